"""Reports of a run: HTML page, JUnit XML, Markdown summary and results.json.

Typical use (what ``run``, ``probe``, ``analyze`` and ``report`` do)::

    paths = render_all(results, Path("reports/out"), secrets=[password])

See :mod:`harness.report.render` for the files, :mod:`harness.report.ladder` for
the diagrams and :mod:`harness.report.redact` for what is masked.
"""

from harness.report.ladder import (
    ArrowLayout,
    ColumnLayout,
    LadderLayout,
    effective_ladder,
    ladder_lines,
    layout_ladder,
)
from harness.report.redact import (
    MASK,
    PcapRedaction,
    redact_pcap,
    redact_text,
    scrub_data,
    scrub_secrets,
)
from harness.report.render import (
    DEFAULT_OUT_DIR,
    TEMPLATE_NAMES,
    ReportPaths,
    ReportView,
    build_view,
    render_all,
    render_junit,
    template_environment,
)

__all__ = [
    "DEFAULT_OUT_DIR",
    "MASK",
    "TEMPLATE_NAMES",
    "ArrowLayout",
    "ColumnLayout",
    "LadderLayout",
    "PcapRedaction",
    "ReportPaths",
    "ReportView",
    "build_view",
    "effective_ladder",
    "ladder_lines",
    "layout_ladder",
    "redact_pcap",
    "redact_text",
    "render_all",
    "render_junit",
    "scrub_data",
    "scrub_secrets",
    "template_environment",
]
