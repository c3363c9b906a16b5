"""What the hub tells a session's job travels as one typed object: written and read back the
same, defaults left out, and only INK's own settings kept from the user's code."""

from ink_core import jobsettings
from ink_core.jobsettings import JobSettings


def test_settings_round_trip_through_the_environment():
    settings = JobSettings(
        app="vscode",
        app_title="VS Code",
        image="alma9",
        experiment="juno",
        setup=["/cvmfs/juno/setup.sh"],
        server_command=["jupyterhub-singleuser"],
        app_args=["--ServerApp.default_url=/vscode/"],
        server_proxy={"vscode": {"command": ["code-server"], "unix_socket": True}},
        monitor_interval=2.5,
        callback_url="http://hub:8081/hub/ink/job-ready",
    )
    env = jobsettings.to_env(settings)
    assert env["INK_SETUP"] == '["/cvmfs/juno/setup.sh"]' and env["INK_MONITOR_INTERVAL"] == "2.5"
    assert "INK_LOG" not in env and "INK_JOB_IP" not in env  # defaults are not sent
    assert jobsettings.from_env(env) == settings
    assert jobsettings.from_env({}) == JobSettings()


def test_only_inks_own_settings_are_kept_from_the_users_code():
    assert jobsettings.FOR_USER_CODE == {"INK_APP", "INK_HUB", "INK_IMAGE", "INK_EXPERIMENT", "INK_CLUSTER"}
    assert "INK_CALLBACK_URL" in jobsettings.INTERNAL and "INK_SERVER_COMMAND" in jobsettings.INTERNAL
    assert "INK_EXPERIMENT_NAME" not in jobsettings.INTERNAL  # an experiment's own variable
    assert not jobsettings.FOR_USER_CODE & jobsettings.INTERNAL
