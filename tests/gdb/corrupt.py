# tests/gdb.rs: break the kernel's state on purpose (then put it back), to
# check that tools/gdb/gmpos.py reports each bad goroutine or queue and still
# prints the rest. Runs inside gdb after gmpos.py is sourced.
import gdb

_saved = []


def _poke(addr, value, size=8):
    inf = gdb.selected_inferior()
    _saved.append((addr, bytes(inf.read_memory(addr, size))))
    inf.write_memory(addr, int(value).to_bytes(size, "little"))


def corrupt(send, select, queued):
    k = Kernel()
    gs = {g.goid: g for g in k.goroutines() if g.error is None}
    # A wild frame pointer in the sender's saved gobuf.
    off, _ = field(ktype("G"), "sched.bp")
    _poke(gs[send].addr + off, 0x12345678)
    # A status no goroutine has.
    off, t = field(ktype("G"), "atomicstatus")
    _poke(gs[select].addr + off, 77, t.sizeof)
    # A wild pointer in allgs, where the queued goroutine was.
    sym, base = symbol_addr("allgs")
    voff, vt = field(sym.type.strip_typedefs(), "data.value")
    lenoff, _ = field(vt, "len")
    n = read_uint(base + voff + lenoff)
    ptr = vec_ptr(vt, base + voff)
    for i in range(n):
        if read_uint(ptr + 8 * i) == gs[queued].addr:
            _poke(ptr + 8 * i, 0xDEAD0000)
    # A wild runnext.
    _, p0 = k.ps[0]
    roff, rt = field(ktype("P"), "runq")
    noff, _ = field(rt, "runnext")
    _poke(p0 + roff + noff, 0x40)
    gdb.write("corrupted %d words\n" % len(_saved))


def restore():
    inf = gdb.selected_inferior()
    while _saved:
        addr, old = _saved.pop()
        inf.write_memory(addr, old)
    gdb.write("restored\n")
