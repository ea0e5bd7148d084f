"""CONFIGURE's blocks on the wire (docs/protocol.md section 3.2): ``kind u8, a u8, row u16`` and
the block's arrays, for one field, the row modes, the crossbar or one synapse row."""

from __future__ import annotations

from .. import chip
from ..config import FIELDS, BlockKey, ChipConfig
from ..errors import ProtocolError
from .packing import Reader, Writer

BLOCK_FIELDS = tuple(k.name for k in ChipConfig.block_keys() if k.kind == "field")  # field index table
BLOCK_KINDS = ("field", "row_modes", "crossbar", "synapse_row")
_TEMPLATE = ChipConfig()
MAX_BLOCKS = sum(1 for _ in ChipConfig.block_keys())


def _block_head(key: BlockKey) -> tuple:
    kind = BLOCK_KINDS.index(key.kind)
    if key.kind == "field":
        return kind, BLOCK_FIELDS.index(key.name), 0
    if key.kind == "synapse_row":
        return kind, key.hemisphere, key.row
    return kind, 0, 0


def _block_key(kind: int, a: int, row: int) -> BlockKey:
    if kind >= len(BLOCK_KINDS):
        raise ProtocolError(
            f"configure: block kind {kind}; allowed 0..{len(BLOCK_KINDS) - 1} ({', '.join(BLOCK_KINDS)})"
        )
    name = BLOCK_KINDS[kind]
    if name == "field":
        if a >= len(BLOCK_FIELDS):
            raise ProtocolError(f"configure: field index {a}; allowed 0..{len(BLOCK_FIELDS) - 1}")
        return BlockKey("field", BLOCK_FIELDS[a])
    if name == "synapse_row":
        if a >= chip.N_HEMISPHERES or row >= chip.SYNAPSE_ROWS:
            raise ProtocolError(
                f"configure: synapse row (hemisphere {a}, row {row}); allowed hemisphere "
                f"0..{chip.N_HEMISPHERES - 1}, row 0..{chip.SYNAPSE_ROWS - 1}"
            )
        return BlockKey("synapse_row", hemisphere=a, row=row)
    return BlockKey(name)


def put_blocks(w: Writer, blocks: list) -> None:
    """``n_blocks u32``, then each block's head and arrays."""
    w.put("I", len(blocks))
    for key, arrays in blocks:
        w.put("BBH", *_block_head(key))
        for name, arr in arrays.items():
            w.array(arr, FIELDS[name].dtype)


def get_blocks(r: Reader) -> list:
    """The ``(BlockKey, {field: array})`` list of a CONFIGURE; every count checked before reading."""
    n = r.one("I")
    if n > MAX_BLOCKS:
        raise ProtocolError(f"configure: {n} blocks declared; allowed <= {MAX_BLOCKS}")
    blocks = []
    for _ in range(n):
        key = _block_key(*r.get("BBH"))
        arrays = {}
        for name, like in _TEMPLATE.get_block(key).items():
            arrays[name] = r.array(like.dtype, like.size, f"{key.kind} {name}").reshape(like.shape)
        blocks.append((key, arrays))
    return blocks
