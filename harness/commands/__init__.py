"""The CLI's commands, one module each; :mod:`harness.cli` wires them into one app.

A command module parses nothing itself beyond its typer options: it calls one
function of the library with keyword arguments and turns the result into output
and an exit code.
"""
