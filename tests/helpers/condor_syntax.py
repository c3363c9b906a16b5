"""HTCondor's argument and environment syntax, as condor_submit and the starter read them.

Modelled on the manual's ``arguments`` and ``environment`` sections and on HTCondor's
ArgList rules (condor_utils/condor_arglist): a value whose first non-blank character is ``"``
is the new syntax (V2 quoted): a doubled ``""`` is a literal double quote, blanks separate
arguments, single quotes group and a doubled ``''`` inside them is a literal single quote, and
nothing else (``\\`` included) is special. Any other value is the old syntax (V1): split on
blanks, quotes kept as literal characters, and an unescaped ``"`` is refused.
"""

from __future__ import annotations

BLANKS = " \t\n\r"


class SubmitSyntaxError(ValueError):
    pass


def is_v2_quoted(text: str) -> bool:
    return text.lstrip().startswith('"')


def v2_quoted_to_raw(text: str) -> str:
    text = text.lstrip()
    i, out = 1, []
    while i < len(text):
        if text[i] == '"':
            if text[i + 1 : i + 2] == '"':
                out.append('"')
                i += 2
                continue
            if text[i + 1 :].strip():
                raise SubmitSyntaxError(
                    "Unexpected characters following double-quote.  Did you forget to escape the "
                    "double-quote by repeating it?  Here is the quote and trailing characters: " + text[i:]
                )
            return "".join(out)
        out.append(text[i])
        i += 1
    raise SubmitSyntaxError("Unterminated double-quote.")


def split_v2_raw(raw: str) -> list[str]:
    args, buf, token, i = [], [], False, 0
    while i < len(raw):
        ch = raw[i]
        if ch == "'":
            start, token = i, True
            i += 1
            while i < len(raw):
                if raw[i] == "'":
                    if raw[i + 1 : i + 2] == "'":
                        buf.append("'")
                        i += 2
                        continue
                    break
                buf.append(raw[i])
                i += 1
            if i >= len(raw):
                raise SubmitSyntaxError(f"Unbalanced quote starting here: {raw[start:]}")
            i += 1
        elif ch in BLANKS:
            i += 1
            if token:
                args.append("".join(buf))
                buf, token = [], False
        else:
            buf.append(ch)
            token = True
            i += 1
    if token:
        args.append("".join(buf))
    return args


def v1_wacked_to_raw(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == '"':
            raise SubmitSyntaxError(f"Found illegal unescaped double-quote: {text[i:]}")
        if text[i] == "\\" and text[i + 1 : i + 2] == '"':
            out.append('"')
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def split_v1_raw(raw: str) -> list[str]:
    return raw.translate({ord(c): " " for c in BLANKS}).split()


def arguments_attributes(value: str) -> dict:
    """The job ad's attribute for a submit ``arguments`` value: Arguments (V2) or Args (V1)."""
    if is_v2_quoted(value):
        raw = v2_quoted_to_raw(value)
        split_v2_raw(raw)  # condor_submit refuses what the starter could not split
        return {"Arguments": raw}
    return {"Args": v1_wacked_to_raw(value)}


def job_argv_tail(ad) -> list[str]:
    """What the starter passes after the executable."""
    if "Arguments" in ad:
        return split_v2_raw(str(ad["Arguments"]))
    if "Args" in ad:
        return split_v1_raw(str(ad["Args"]))
    return []


def environment_attributes(value: str) -> dict:
    """Environment (V2, blank separated, quoted like arguments) or Env (V1, ';' separated)."""
    if is_v2_quoted(value):
        raw = v2_quoted_to_raw(value)
        for item in split_v2_raw(raw):
            _name_value(item)
        return {"Environment": raw}
    raw = v1_wacked_to_raw(value)
    for item in raw.split(";"):
        if item.strip():
            _name_value(item)
    return {"Env": raw}


def job_environment(ad) -> dict[str, str]:
    if "Environment" in ad:
        items = split_v2_raw(str(ad["Environment"]))
    elif "Env" in ad:
        items = [i for i in str(ad["Env"]).split(";") if i.strip()]
    else:
        items = []
    return dict(_name_value(item) for item in items)


def _name_value(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise SubmitSyntaxError(f"ERROR: Missing '=' after environment variable '{item}'.")
    return name.strip(), value
