"""OPTIONS ping: is the number's target alive and answering SIP?

Sent to the number's target (the outbound proxy when set) with the Request-URI
``sip:<sip_domain>`` and the pre-loaded Route; a 401/407 is answered once when the
number has credentials (some PBXs challenge OPTIONS).  Success is a 2xx; any other
final response is reported with its code and reason; no response ends at Timer F
with an error naming the target.
"""

from __future__ import annotations

from harness.agent.common import (
    MAX_ATTEMPTS,
    Authenticator,
    OperationFailed,
    Outbound,
    build_request,
    endpoints_for,
    failure_for,
    run_transaction,
)
from harness.agent.core import ALLOW, UserAgent
from harness.agent.results import OptionsResult
from harness.numbers import Effective, NumberConfig


async def options_ping(
    agent: UserAgent, config: NumberConfig, view: Effective, outbound: Outbound
) -> OptionsResult:
    """Send OPTIONS (answering challenges) and report the outcome."""
    local, endpoints = await endpoints_for(agent, outbound)
    result = OptionsResult(success=False, endpoints=endpoints, request_uri=view.register_uri)
    auth = Authenticator(config, view, agent.rng)
    call_id = agent.ids.call_id()
    from_tag = agent.ids.tag()
    authorization: tuple[str, str] | None = None
    try:
        for cseq in range(1, MAX_ATTEMPTS + 1):
            extra: list[tuple[str, str]] = [("Accept", "application/sdp"), ("Allow", ALLOW)]
            if authorization is not None:
                extra.append(authorization)
            request = build_request(
                agent,
                "OPTIONS",
                view.register_uri,
                local=local,
                from_uri=view.from_uri,
                from_tag=from_tag,
                to_uri=view.register_uri,
                call_id=call_id,
                cseq=cseq,
                route=outbound.route,
                contact=f"<{agent.contact_uri(local)}>",
                extra_headers=tuple(extra),
            )
            response = await run_transaction(
                agent,
                request,
                outbound.dest,
                server_name=outbound.server_name,
                records=result.transactions,
            )
            result.status = response.status
            result.reason = response.reason
            result.peer_agent = response.headers.get("Server") or response.headers.get("User-Agent")
            result.allow = ", ".join(response.headers.get_all("Allow")) or None
            record = result.transactions[-1]
            result.rtt_ms = None if record.elapsed_s is None else round(record.elapsed_s * 1e3, 3)
            if 200 <= response.status < 300:
                result.success = True
                break
            if response.status in (401, 407):
                authorization = auth.answer(
                    response, method="OPTIONS", request_uri=view.register_uri
                )
                continue
            raise failure_for(response, auth.answered)
        else:
            raise OperationFailed("protocol", f"gave up after {MAX_ATTEMPTS} OPTIONS requests")
    except OperationFailed as failure:
        result.error = failure.message
        result.error_kind = failure.kind
    result.auth = auth.info
    result.garbage_received = agent.garbage_received
    return result
