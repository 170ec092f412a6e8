"""A session channel that also reads ``exit-signal``, and the paramiko transport that lets it.

A process killed by a signal reports ``-signal`` from `wait()`, like subprocess: paramiko drops
the ``exit-signal`` message, so `ExitSignalChannel` reads it itself. paramiko dispatches
channel requests through a table holding the base class's function; `ExitSignalTransport`
dispatches them through the channel object instead, so the subclass sees them.
"""

from __future__ import annotations

import signal

import paramiko


class ExitSignalChannel(paramiko.Channel):
    """paramiko ignores `exit-signal`: record it as exit status -SIGNUM (like subprocess)."""

    got_status = False  # an exit-status or exit-signal arrived (not merely the channel closing)

    def _handle_request(self, m: paramiko.Message) -> None:
        position = m.packet.tell()
        key = m.get_text()
        if key == "exit-signal":
            want_reply = m.get_boolean()
            name = m.get_text()
            number = getattr(signal, "SIG" + name, None)
            self.exit_status = -int(number) if number is not None else -1
            self.got_status = True
            self.status_event.set()
            if want_reply:
                reply = paramiko.Message()
                reply.add_byte(paramiko.common.cMSG_CHANNEL_SUCCESS)
                reply.add_int(self.remote_chanid)
                self.transport._send_user_message(reply)  # type: ignore[union-attr]  # private, not in the stubs
            return
        m.packet.seek(position)
        super()._handle_request(m)  # type: ignore[misc]  # paramiko's private hook, not in the stubs
        if key == "exit-status":
            self.got_status = True


class ExitSignalTransport(paramiko.Transport):
    """Dispatches channel requests through the channel object, so `ExitSignalChannel` sees them."""

    _channel_handler_table = {
        **paramiko.Transport._channel_handler_table,  # type: ignore[attr-defined]  # private, not in the stubs
        paramiko.common.MSG_CHANNEL_REQUEST: lambda channel, m: channel._handle_request(m),
    }


def channel_alive(channel: paramiko.Channel) -> bool:
    """Whether the connection under `channel` still works (the channel itself may have ended)."""
    transport = channel.get_transport()
    return transport is not None and transport.is_active()
