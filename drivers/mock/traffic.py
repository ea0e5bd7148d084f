"""Bytes a run of the in-process mock chip would move on the wire protocol.

``Health.bytes_sent`` / ``bytes_received`` of a mock run are the framed sizes of the RUN
request and its reply (``hil.wire.framed_size``: payload, headers and CRCs of every chunk;
acknowledgements and keep-alive frames are not counted), so in-process runs report the same
traffic a run over ``socket://`` carries. The sizes are counted from the messages' contents;
nothing is encoded (``hil.wire.payload_size``).
"""

from __future__ import annotations

from hil import wire
from hil.measurement import Measurement
from hil.stimulus import Recording, Stimulus


def run_bytes(stimulus: Stimulus, recording: Recording, measurement: Measurement) -> tuple[int, int]:
    """(bytes sent, bytes received) of the RUN exchange that carries ``measurement``."""
    return wire.framed_size(wire.Run(stimulus, recording)), wire.framed_size(wire.RunReply(measurement))
