"""``sipharness peers up|down|status``: stand the mock carriers and PBXs up by hand.

``up`` renders a profile for a number, starts its peers detached (they outlive the
command, labelled so ``down`` finds them) and prints where they listen and which
credentials they accept (the password masked). ``down`` removes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harness.commands.common import print_json, user_errors
from harness.numbers import PASSWORD_MASK, load_number_file
from harness.peers.containers import (
    Peers,
    managed_containers,
    reap_leftovers,
    remove_runs,
    start_peers,
)
from harness.peers.engine import Engine
from harness.peers.profiles import Quirk, list_profiles, load_profile
from harness.peers.render import render_run
from harness.resources import data_dir

peers_app = typer.Typer(
    help="Start, list and remove the mock carrier/PBX peers (Kamailio, Asterisk).",
    no_args_is_help=True,
)

DEFAULT_NUMBER = "numbers/example.yaml"


def _summary(peers: Peers) -> dict[str, Any]:
    number = peers.number
    credentials = peers.rendered.credentials
    return {
        "run_id": peers.run_id,
        "profile": peers.profile.name,
        "stands_for": peers.profile.stands_for,
        "quirks": [q.value for q in peers.profile.quirks],
        "startup_seconds": round(peers.startup_seconds or 0.0, 3),
        "peers": [
            {
                "name": r.rendered.spec.name,
                "role": r.rendered.spec.role.value,
                "software": r.rendered.spec.software.value,
                "address": r.rendered.spec.address,
                "port": r.rendered.spec.port,
                "transport": r.rendered.spec.transport.value,
                "container": str(r.container.name),
            }
            for r in peers.running
        ],
        "credentials": None
        if credentials is None
        else {
            "username": credentials.aor_user,
            "auth_username": credentials.digest_username,
            "password": PASSWORD_MASK,
            "realm": credentials.realm,
            "checked_by": credentials.checked_by,
        },
        "number": number.to_public_dict(),
        "ca_file": None if peers.rendered.ca_file is None else str(peers.rendered.ca_file),
    }


@peers_app.command("up")
def up(  # noqa: PLR0917 - typer passes options positionally
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            "-p",
            help=f"Profile name ({', '.join(list_profiles())}) or path to a profile YAML.",
        ),
    ],
    number: Annotated[
        Path | None,
        typer.Option("--number", "-n", help="Number file (default: the bundled example)."),
    ] = None,
    quirk: Annotated[
        list[str] | None,
        typer.Option(
            "--quirk",
            help="Quirk to show instead of the profile's (repeatable): "
            + ", ".join(q.value for q in Quirk),
        ),
    ] = None,
    base: Annotated[
        int, typer.Option("--base", help="Address block: 127.0.0.x becomes 127.0.BASE.x.")
    ] = 0,
    port_offset: Annotated[int, typer.Option("--port-offset", help="Added to every port.")] = 0,
    log_requests: Annotated[
        bool, typer.Option("--log-requests", help="One log line per request (slower).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Start a profile's peers and leave them running (remove them with `peers down`)."""
    with user_errors():
        chosen = load_profile(profile)
        config = load_number_file(number or data_dir("fixtures") / DEFAULT_NUMBER)
        engine = Engine.connect()
        try:
            # A killed earlier run must not hold the addresses this one needs.
            reap_leftovers(engine)
            peers = start_peers(
                chosen, config, quirks=quirk or None, base=base, port_offset=port_offset,
                log_requests=log_requests, detached=True, engine=engine,
            )  # fmt: skip
        finally:
            engine.close()
    summary = _summary(peers)
    if as_json:
        print_json(summary)
        return
    typer.echo(f"run {summary['run_id']}: profile {summary['profile']} "
               f"ready in {summary['startup_seconds']:.2f} s")  # fmt: skip
    for row in summary["peers"]:
        typer.echo(
            f"  {row['role']:<10} {row['name']:<10} {row['transport']}:"
            f"{row['address']}:{row['port']}  ({row['software']}, {row['container']})"
        )
    shown = summary["number"]
    proxy = f" outbound_proxy={shown['outbound_proxy']}" if shown["outbound_proxy"] else ""
    typer.echo(f"  point the number at: sip_domain={shown['sip_domain']}{proxy}")
    creds = summary["credentials"]
    if creds is None:
        typer.echo("  credentials: none (IP-authenticated)")
    else:
        typer.echo(
            f"  credentials: username={creds['username']} auth_username={creds['auth_username']} "
            f"password={creds['password']} realm={creds['realm']}"
        )
    if summary["ca_file"]:
        typer.echo(f"  trust CA: {summary['ca_file']}")
    typer.echo(f"  remove with: sipharness peers down --run {summary['run_id']}")


@peers_app.command("render")
def render(
    profile: Annotated[str, typer.Option("--profile", "-p", help="Profile name or YAML path.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to render into (made 0700).")],
    number: Annotated[
        Path | None,
        typer.Option("--number", "-n", help="Number file (default: the bundled example)."),
    ] = None,
) -> None:
    """Render a profile's peer configs (for compose/*.yml); prints the folder."""
    with user_errors():
        rendered = render_run(
            load_profile(profile),
            load_number_file(number or data_dir("fixtures") / DEFAULT_NUMBER),
            out,
        )
    typer.echo(str(rendered.folder))


@peers_app.command("down")
def down(
    run: Annotated[
        str | None, typer.Option("--run", help="Remove only this run's peers (default: all).")
    ] = None,
) -> None:
    """Remove the harness's peer containers (all runs, or one)."""
    with user_errors():
        engine = Engine.connect()
        try:
            removed = remove_runs(engine, run_id=run)
        finally:
            engine.close()
    typer.echo(f"removed {len(removed)} container(s)")


@peers_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the harness's peer containers."""
    with user_errors():
        engine = Engine.connect()
        try:
            found = managed_containers(engine)
        finally:
            engine.close()
    rows = [
        {
            "run_id": c.run_id, "profile": c.profile, "peer": c.peer, "name": c.name,
            "status": c.status, "detached": c.detached,
        }
        for c in found
    ]  # fmt: skip
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no peers running")
    for row in rows:
        typer.echo(f"{row['run_id']:<36} {row['profile']:<16} {row['peer']:<10} {row['status']}")


def register(app: typer.Typer) -> None:
    """Add the ``peers`` command group to ``app``."""
    app.add_typer(peers_app, name="peers")
