"""`harness dashboard`: optuna-dashboard on a results folder, an optuna.db file or a storage URL."""

import socket
from collections.abc import Callable

import optuna_dashboard

from harness.tune.storage import dashboard_storage, hide_password, open_storage


def serve(target: str, host: str, port: int, say: Callable[[str], None]) -> None:
    """Serve the studies of `target` (dashboard_storage: what a user names) on host:port (port
    0: a free one) until stopped; `say` gets the line with the address before the server starts.
    A target that is no storage is a UserError, before anything listens."""
    url = dashboard_storage(target)
    storage = open_storage(url)
    if port == 0:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    say(f"optuna-dashboard on {hide_password(url)}: http://{host}:{port}/")
    optuna_dashboard.run_server(storage, host=host, port=port)
