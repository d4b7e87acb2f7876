"""RFC 3261 dialogs (§12) and the requests built from them: in-dialog requests, the
ACK for a 2xx (§13.2.2.4), BYE (§15) and CANCEL (§9.1), sans-IO.

A :class:`Dialog` is state only: it reads the messages that create and update it
and builds requests from that state; it sends nothing and keeps no clock.  What a
caller may rely on:

* the dialog ID is ``(Call-ID, local tag, remote tag)`` (:class:`DialogId`);
* the route set comes from Record-Route: a UAC takes the response's in reverse
  order (§12.1.2), a UAS the request's in order (§12.1.1); an early UAC dialog
  recomputes it from the 2xx that confirms it;
* requests follow §12.2.1.1: with an empty route set, or a first route carrying
  ``lr``, the Request-URI is the remote target and Route headers carry the route
  set (loose routing); otherwise (a strict router) the first route becomes the
  Request-URI and the remote target is appended as the last Route;
* the local CSeq grows by one for every request built by :meth:`Dialog.create_request`
  (not for ACK and CANCEL, which reuse the INVITE's number);
* :meth:`Dialog.receive_request` returns 500 for a request whose CSeq is lower than
  the last one received (§12.2.2), and None when the request may be processed.

Malformed remote input raises :class:`RemoteProtocolError`; our own misuse (a request
on a terminated dialog, no branch available...) raises :class:`LocalProtocolError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Final

from harness.sip.errors import LocalProtocolError, RemoteProtocolError
from harness.sip.ids import IdGenerator
from harness.sip.message import Headers, Message, Request, Response
from harness.sip.uri import NameAddr, SipUri, Uri, Via, parse_name_addr, parse_via

#: Methods whose requests (and 2xx responses) refresh the remote target (§12.2,
#: RFC 3311 UPDATE, RFC 6665 SUBSCRIBE/NOTIFY, RFC 3515 REFER).
TARGET_REFRESH_METHODS: Final = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})

#: Max-Forwards of every request we originate (RFC 3261 §8.1.1.6).
MAX_FORWARDS: Final = 70

#: URI parameters not allowed in a Request-URI (RFC 3261 §19.1.1 table); URI
#: headers are dropped as well when a strict route becomes the Request-URI.
_NOT_IN_REQUEST_URI: Final = frozenset({"method"})


class DialogState(Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class DialogId:
    """§12: Call-ID, local tag and remote tag (None for a peer that sent no tag)."""

    call_id: str
    local_tag: str
    remote_tag: str | None


def _header(message: Message, name: str) -> str:
    value = message.headers.get(name)
    if value is None:
        raise RemoteProtocolError(f"{message!r} has no {name} header")
    return value


def _name_addr(message: Message, name: str) -> NameAddr:
    return parse_name_addr(_header(message, name))


def _cseq(message: Message) -> tuple[int, str]:
    cseq = message.cseq
    if cseq is None:
        raise RemoteProtocolError(f"{message!r} has no valid CSeq header")
    return cseq


def dialog_id_of_request(request: Request) -> DialogId:
    """The ID of the dialog an incoming request belongs to, seen from its UAS.

    Local tag = To tag, remote tag = From tag.  Raises :class:`RemoteProtocolError`
    when the To tag is missing (the request is outside any dialog) or a header is bad.
    """
    to_tag = _name_addr(request, "To").tag
    if not to_tag:
        raise RemoteProtocolError(f"{request!r} has no To tag: it belongs to no dialog")
    return DialogId(_header(request, "Call-ID"), to_tag, _name_addr(request, "From").tag)


def dialog_id_of_response(response: Response) -> DialogId:
    """The ID of the dialog a response creates or belongs to, seen from its UAC.

    Local tag = From tag, remote tag = To tag.  Raises :class:`RemoteProtocolError`
    when a tag is missing.
    """
    from_tag = _name_addr(response, "From").tag
    to_tag = _name_addr(response, "To").tag
    if not from_tag or not to_tag:
        raise RemoteProtocolError(f"{response!r} lacks a From or To tag: it makes no dialog")
    return DialogId(_header(response, "Call-ID"), from_tag, to_tag)


def _contact_uri(message: Message) -> Uri:
    return parse_name_addr(_header(message, "Contact")).uri


def _record_route(message: Message) -> tuple[NameAddr, ...]:
    return tuple(parse_name_addr(value) for value in message.headers.get_all("Record-Route"))


def _via_template(via: Via) -> Via:
    """A Via without its branch (and without what the remote side added to it)."""
    keep = tuple(
        (name, value)
        for name, value in via.params
        if name.lower() not in ("branch", "received", "rport")
    )
    rport: tuple[tuple[str, str | None], ...] = (("rport", None),) if via.has_rport else ()
    return dataclasses.replace(via, params=keep + rport)


def _via_from_contact(uri: Uri) -> Via | None:
    if not isinstance(uri, SipUri):
        return None
    transport = uri.transport or ("tls" if uri.scheme == "sips" else "udp")
    return Via(transport=transport.upper(), host=uri.host, port=uri.port)


class Dialog:
    """One dialog's state (§12) and the requests built from it.

    Create it with :meth:`from_uac` or :meth:`from_uas`.  ``ids`` (an
    :class:`~harness.sip.ids.IdGenerator`) supplies branches when the caller passes
    none, and the first CSeq of a UAS dialog; without it every request needs an
    explicit ``branch`` and a UAS dialog starts its CSeq at 1.
    """

    def __init__(
        self,
        *,
        dialog_id: DialogId,
        state: DialogState,
        is_uac: bool,
        local_uri: Uri,
        remote_uri: Uri,
        remote_target: Uri,
        route_set: tuple[NameAddr, ...],
        local_seq: int | None,
        remote_seq: int | None,
        local_target: Uri | None = None,
        local_via: Via | None = None,
        ids: IdGenerator | None = None,
        invite_seq: int | None = None,
    ) -> None:
        self.id = dialog_id
        self.state = state
        self.is_uac: Final = is_uac
        self.local_uri: Final = local_uri
        self.remote_uri: Final = remote_uri
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.local_target = local_target
        self.local_via = local_via
        self.ids = ids
        # CSeq number of the INVITE that created the dialog (UAC): its 2xx confirms
        # an early dialog and its non-2xx final response ends it (§12.1.2, §12.3).
        self._invite_seq = invite_seq

    # --- creation -------------------------------------------------------------------

    @classmethod
    def from_uac(
        cls, request: Request, response: Response, *, ids: IdGenerator | None = None
    ) -> Dialog:
        """The dialog our request (an INVITE) and a 101-299 response with a To tag create.

        A 1xx gives an early dialog, a 2xx a confirmed one (§12.1.2).  Raises
        :class:`LocalProtocolError` for a response that creates no dialog and
        :class:`RemoteProtocolError` for a response without Contact.
        """
        if not 101 <= response.status <= 299:
            raise LocalProtocolError(f"{response!r} creates no dialog (needs 101-299)")
        dialog_id = dialog_id_of_response(response)
        number, _ = _cseq(request)
        try:
            local_target: Uri | None = _contact_uri(request)
        except RemoteProtocolError:
            local_target = None  # we sent no Contact; target refreshes must pass one
        return cls(
            dialog_id=dialog_id,
            state=DialogState.EARLY if response.status < 200 else DialogState.CONFIRMED,
            is_uac=True,
            local_uri=_name_addr(request, "From").uri,
            remote_uri=_name_addr(request, "To").uri,
            remote_target=_contact_uri(response),
            route_set=tuple(reversed(_record_route(response))),
            local_seq=number,
            remote_seq=None,
            local_target=local_target,
            local_via=_via_template(parse_via(_header(request, "Via"))),
            ids=ids,
            invite_seq=number if request.method.upper() == "INVITE" else None,
        )

    @classmethod
    def from_uas(
        cls,
        request: Request,
        response: Response,
        *,
        ids: IdGenerator | None = None,
        local_via: Via | None = None,
    ) -> Dialog:
        """The dialog an incoming request and our 101-299 response with a To tag create.

        §12.1.1: route set = the request's Record-Route in order, remote target = its
        Contact, remote CSeq = its CSeq, local CSeq empty.  ``local_via`` is the Via
        (without branch) of requests we will send; by default it is derived from our
        response's Contact.  Raises :class:`LocalProtocolError` when our response
        creates no dialog, :class:`RemoteProtocolError` when the request lacks Contact.
        """
        if not 101 <= response.status <= 299:
            raise LocalProtocolError(f"{response!r} creates no dialog (needs 101-299)")
        local_tag = _name_addr(response, "To").tag
        if not local_tag:
            raise LocalProtocolError("a response that creates a dialog needs a To tag")
        try:
            local_target: Uri | None = _contact_uri(response)
        except RemoteProtocolError:
            local_target = None
        if local_via is None and local_target is not None:
            local_via = _via_from_contact(local_target)
        number, _ = _cseq(request)
        return cls(
            dialog_id=DialogId(
                _header(request, "Call-ID"), local_tag, _name_addr(request, "From").tag
            ),
            state=DialogState.EARLY if response.status < 200 else DialogState.CONFIRMED,
            is_uac=False,
            local_uri=_name_addr(request, "To").uri,
            remote_uri=_name_addr(request, "From").uri,
            remote_target=_contact_uri(request),
            route_set=_record_route(request),
            local_seq=None,
            remote_seq=number,
            local_target=local_target,
            local_via=local_via,
            ids=ids,
        )

    # --- updates --------------------------------------------------------------------

    def confirm(self) -> None:
        """An early dialog becomes confirmed (a UAS calls this when it sends its 2xx)."""
        if self.state is DialogState.TERMINATED:
            raise LocalProtocolError("dialog is terminated")
        self.state = DialogState.CONFIRMED

    def terminate(self) -> None:
        """End the dialog (e.g. after sending BYE, or when its transaction timed out)."""
        self.state = DialogState.TERMINATED

    def receive_response(self, response: Response) -> None:
        """Update the dialog with a response to a request we sent in it.

        * the 2xx to the INVITE that created an early UAC dialog confirms it and
          recomputes the route set and remote target from it (§12.1.2);
        * a 300-699 to that INVITE ends the early dialog (§12.3);
        * a 2xx to a target refresh request replaces the remote target with its
          Contact, when present (§12.2.1.2);
        * a 481 or 408 ends the dialog (§12.2.1.2), as does any final response to BYE.

        Raises :class:`LocalProtocolError` when the response belongs to another dialog.
        """
        if dialog_id_of_response(response) != self.id:
            raise LocalProtocolError(f"{response!r} does not belong to dialog {self.id}")
        number, method = _cseq(response)
        method = method.upper()
        status = response.status
        creating_invite = method == "INVITE" and number == self._invite_seq
        if status < 200:
            return
        if self.state is DialogState.EARLY and creating_invite:
            if status >= 300:
                self.state = DialogState.TERMINATED
                return
            self.state = DialogState.CONFIRMED
            if self.is_uac:
                self.route_set = tuple(reversed(_record_route(response)))
        if status in (408, 481) or method == "BYE":
            self.state = DialogState.TERMINATED
            return
        if status < 300 and method in TARGET_REFRESH_METHODS and "Contact" in response.headers:
            self.remote_target = _contact_uri(response)

    def receive_request(self, request: Request) -> int | None:
        """Check and record a request received in this dialog (§12.2.2).

        Returns 500 when its CSeq is lower than the last one received (the request
        is out of order and must be rejected with that status; the dialog is left
        unchanged), None otherwise: the remote CSeq is recorded, a target refresh
        request's Contact replaces the remote target, and a BYE ends the dialog.
        ACK and CANCEL are not checked (they reuse their INVITE's number).

        Raises :class:`LocalProtocolError` when the request belongs to another dialog.
        """
        if dialog_id_of_request(request) != self.id:
            raise LocalProtocolError(f"{request!r} does not belong to dialog {self.id}")
        number, _ = _cseq(request)
        method = request.method.upper()
        if method in ("ACK", "CANCEL"):
            return None
        if self.remote_seq is not None and number < self.remote_seq:
            return 500
        self.remote_seq = number
        if method in TARGET_REFRESH_METHODS and "Contact" in request.headers:
            self.remote_target = _contact_uri(request)
        if method == "BYE":
            self.state = DialogState.TERMINATED
        return None

    def is_out_of_order(self, request: Request) -> bool:
        """True when ``request``'s CSeq is lower than the last one received (§12.2.2).

        A pure check: nothing is recorded (see :meth:`receive_request`).
        """
        number, _ = _cseq(request)
        return (
            request.method.upper() not in ("ACK", "CANCEL")
            and self.remote_seq is not None
            and number < self.remote_seq
        )

    # --- building requests ----------------------------------------------------------

    def request_target(self) -> tuple[Uri, tuple[NameAddr, ...]]:
        """The Request-URI and the Route values of the next request (§12.2.1.1)."""
        if not self.route_set:
            return self.remote_target, ()
        first = self.route_set[0]
        if isinstance(first.uri, SipUri) and first.uri.has_param("lr"):
            return self.remote_target, self.route_set
        # Strict routing: the first route is the Request-URI, the remote target the
        # last Route.
        uri = first.uri
        if isinstance(uri, SipUri):
            params = tuple(
                (name, value)
                for name, value in uri.params
                if name.lower() not in _NOT_IN_REQUEST_URI
            )
            uri = dataclasses.replace(uri, params=params, headers=())
        return uri, (*self.route_set[1:], NameAddr(uri=self.remote_target))

    def create_request(
        self,
        method: str,
        *,
        branch: str | None = None,
        via: Via | None = None,
        contact: Uri | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> Request:
        """A new request within the dialog (§12.2.1.1), e.g. BYE, re-INVITE, INFO.

        From/To carry the local/remote URI and tags, Call-ID the dialog's, CSeq the
        next local number (the dialog records it), Max-Forwards 70, one Via (``via``,
        or the dialog's ``local_via``) with ``branch`` (or a new one from ``ids``).
        Target refresh requests (INVITE, UPDATE, SUBSCRIBE, NOTIFY, REFER) carry a
        Contact: ``contact`` or the dialog's local target.

        Raises :class:`LocalProtocolError` for ACK or CANCEL (see :meth:`create_ack`,
        :func:`build_cancel`), on a terminated dialog, or when no branch, Via or
        required Contact is available.
        """
        method = method.upper()
        if method in ("ACK", "CANCEL"):
            raise LocalProtocolError(f"build {method} with create_ack/build_cancel")
        if self.state is DialogState.TERMINATED:
            raise LocalProtocolError(f"dialog {self.id} is terminated")
        if contact is None and method in TARGET_REFRESH_METHODS:
            contact = self.local_target
            if contact is None:
                raise LocalProtocolError(f"{method} refreshes the target: pass a contact")
        top = self._via(via, branch)  # checked before the CSeq is consumed
        if self.local_seq is not None:
            number = self.local_seq + 1
        else:
            number = self.ids.cseq() if self.ids is not None else 1
        self.local_seq = number
        request_uri, headers = self._common_headers(top, number, method)
        if contact is not None:
            headers.add("Contact", str(NameAddr(uri=contact)))
        return _finish(
            method,
            request_uri,
            headers,
            body=body,
            content_type=content_type,
            extra_headers=extra_headers,
        )

    def create_ack(
        self,
        invite: Request,
        *,
        branch: str | None = None,
        via: Via | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """The ACK for a 2xx to ``invite`` (§13.2.2.4), sent outside any transaction.

        Built like any in-dialog request, with a new branch, except that its CSeq
        number is the INVITE's (method ACK; the local CSeq does not move) and it
        carries the INVITE's Authorization and Proxy-Authorization headers.
        """
        number, method = _cseq(invite)
        if method.upper() != "INVITE" or invite.method.upper() != "INVITE":
            raise LocalProtocolError("create_ack acknowledges an INVITE only")
        if invite.call_id != self.id.call_id:
            raise LocalProtocolError("that INVITE does not belong to this dialog")
        request_uri, headers = self._common_headers(self._via(via, branch), number, "ACK")
        for name in ("Authorization", "Proxy-Authorization"):
            for value in invite.headers.get_raw(name):
                headers.add(name, value)
        return _finish("ACK", request_uri, headers, body=body, content_type=content_type)

    # --- helpers ----------------------------------------------------------------------

    def _via(self, via: Via | None, branch: str | None) -> Via:
        template = via if via is not None else self.local_via
        if template is None:
            raise LocalProtocolError("no Via for this dialog: pass via=")
        if branch is None:
            if self.ids is None:
                raise LocalProtocolError("no branch: pass branch= or give the dialog ids")
            branch = self.ids.branch()
        params = tuple((n, v) for n, v in template.params if n.lower() != "branch")
        return dataclasses.replace(template, params=(("branch", branch), *params))

    def _common_headers(self, via: Via, number: int, method: str) -> tuple[Uri, Headers]:
        request_uri, routes = self.request_target()
        headers = Headers()
        headers.add("Via", str(via))
        for route in routes:
            headers.add("Route", str(route))
        headers.add("Max-Forwards", str(MAX_FORWARDS))
        headers.add("From", str(NameAddr(uri=self.local_uri, params=(("tag", self.id.local_tag),))))
        remote_params: tuple[tuple[str, str | None], ...] = (
            (("tag", self.id.remote_tag),) if self.id.remote_tag else ()
        )
        headers.add("To", str(NameAddr(uri=self.remote_uri, params=remote_params)))
        headers.add("Call-ID", self.id.call_id)
        headers.add("CSeq", f"{number} {method}")
        return request_uri, headers

    def __repr__(self) -> str:
        return f"<Dialog {self.state.value} {self.id}>"


def _finish(
    method: str,
    request_uri: Uri,
    headers: Headers,
    *,
    body: bytes,
    content_type: str | None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> Request:
    for name, value in extra_headers:
        headers.add(name, value)
    if body:
        if content_type is None:
            raise LocalProtocolError("a body needs a content_type")
        headers.add("Content-Type", content_type)
    return Request(method=method, uri=str(request_uri), headers=headers, body=body)


def build_cancel(request: Request) -> Request:
    """The CANCEL of ``request`` (RFC 3261 §9.1).

    Same Request-URI, Call-ID, To (no tag added), From and CSeq number (method
    CANCEL) as the INVITE; a single Via equal to its top Via; its Route headers;
    Max-Forwards 70.  Raises :class:`LocalProtocolError` for anything but an INVITE
    (a non-INVITE cannot be cancelled, §9.1).
    """
    if request.method.upper() != "INVITE":
        raise LocalProtocolError(f"only an INVITE can be cancelled, not {request.method}")
    cseq = request.cseq
    top = request.headers.get("Via")
    if cseq is None or top is None:
        raise LocalProtocolError("the INVITE needs a CSeq and a Via to be cancelled")
    headers = Headers()
    headers.add("Via", top)
    for route in request.headers.get_raw("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", str(MAX_FORWARDS))
    for name in ("From", "To", "Call-ID"):
        for value in request.headers.get_raw(name):
            headers.add(name, value)
    headers.add("CSeq", f"{cseq[0]} CANCEL")
    return Request(method="CANCEL", uri=request.uri, headers=headers)
