"""The platform side of a custom number: OPTIONS, REGISTER, calls, the inbound UAS, RTP.

Typical use (see :mod:`harness.agent.runner` for the one-call versions)::

    agent, outbound = await open_outbound_agent(config, effective_view(config))
    async with agent:
        result = await register_number(agent, config, view, outbound)
        for event in agent.events:      # every message, in order, with times
            ...
"""

from harness.agent.call import place_call
from harness.agent.common import Outbound, open_outbound_agent, resolve_outbound
from harness.agent.core import LossConfig, UserAgent, build_response, source_address_for
from harness.agent.events import AgentEvent, EventLog
from harness.agent.options import options_ping
from harness.agent.register import Registration, register_number
from harness.agent.results import (
    AnswerResult,
    AuthInfo,
    CallResult,
    Endpoints,
    InboundCallResult,
    OptionsResult,
    RegisterResult,
    TransactionResult,
)
from harness.agent.rtp import RtpEndpoint, RtpStats, echo_server
from harness.agent.runner import (
    AgentSettings,
    Outcome,
    run_answer,
    run_call,
    run_options,
    run_register,
)
from harness.agent.uas import InboundServer, answer_calls, open_inbound_agent

__all__ = [
    "AgentEvent",
    "AgentSettings",
    "AnswerResult",
    "AuthInfo",
    "CallResult",
    "Endpoints",
    "EventLog",
    "InboundCallResult",
    "InboundServer",
    "LossConfig",
    "OptionsResult",
    "Outbound",
    "Outcome",
    "RegisterResult",
    "Registration",
    "RtpEndpoint",
    "RtpStats",
    "TransactionResult",
    "UserAgent",
    "answer_calls",
    "build_response",
    "echo_server",
    "open_inbound_agent",
    "open_outbound_agent",
    "options_ping",
    "place_call",
    "register_number",
    "resolve_outbound",
    "run_answer",
    "run_call",
    "run_options",
    "run_register",
    "source_address_for",
]
