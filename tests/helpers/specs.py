"""A JobSpec as the spawner would build it for alice, with overrides per test."""

from ink_spawner.jobspec import JobSpec


def job_spec(**overrides) -> JobSpec:
    fields = dict(
        username="alice",
        name="ink-jupyterlab",
        app="jupyterlab",
        cpus=2,
        memory_mb=6144,
        walltime_s=86400,
        gpus=1,
        image="host",
        experiment="juno",
        command=["/opt/ink/bin/python", "-m", "ink_spawner.jobscript", "--app", "jupyterlab"],
        env={"JUPYTERHUB_API_TOKEN": "secret"},
        log_path="/home/alice/.ink/logs/x.log",
        workdir="/home/alice",
    )
    fields.update(overrides)
    return JobSpec(**fields)
