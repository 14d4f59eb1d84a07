# gdb support for gmpos: goroutines, run queues and the scheduler, read from memory.
#
# Go ships runtime-gdb.py so that gdb lists a Go program's goroutines and
# unwinds any of them. This is the same for the gmpos kernel, with Go's
# command names where Go has them:
#
#   info goroutines [all]     every goroutine: id, status, wait reason, where it
#                             is (P/queue/core) and where it runs or resumes;
#                             `*` marks the ones running now. `all` adds dead ones.
#   goroutine N bt            backtrace of goroutine N, whatever its state: from
#                             its core's registers (running), its saved gobuf
#                             (parked, runnable), or the interrupt frame saved on
#                             its stack (preempted asynchronously), through the
#                             frame-pointer chain. `goroutine all bt`: every one.
#   goroutine N frame K       frame K of goroutine N and its locals (`info locals`)
#   goroutine N CMD...        any gdb command with goroutine N's registers loaded
#                             into the selected core, e.g. `goroutine 7 bt full`
#                             (restored afterwards; as Go's script does)
#   info runq                 per P: status, runnext, local queue in order, timers;
#                             the global queue; per M: core, P, spinning/parked, curg
#   info sched                what schedtrace=N scheddetail=1 prints, from memory
#
# Everything is read with plain memory reads, never by calling kernel code,
# so it works on a hung or crashed kernel. The kernel's state is not trusted:
# every list walk is bounded, every pointer is checked before use, and a bad
# goroutine gives one readable error line while the others still print.
#
# Struct layouts come from the kernel ELF's DWARF (gdb's type info), by field
# name: a reordered or resized struct is followed automatically, and a renamed
# field gives a clear error naming it instead of a silently wrong value.
# The numbers kept here are Go's (the _G* and _P* status codes, which
# runtime2.rs keeps equal to Go's) and the context-switch layout of
# arch/x86_64/switch.rs (mcall's resume point, below).
#
# Load it with `source tools/gdb/gmpos.py` (the runner's --gdb message prints a
# gdb command line that does), or let the repository's .gdbinit do it.

import re

import gdb

# ---------------------------------------------------------------------------
# Limits: a corrupted kernel must not make gdb loop or read gigabytes.

MAX_GS = 1 << 20          # entries of allgs we are willing to read
MAX_QUEUE = 1 << 17       # links followed in a linked queue (global runq, gfree)
MAX_FRAMES = 64           # frames of one backtrace
MAX_TIMERS_SHOWN = 32     # timers listed per P (all are counted)
RUNQ_SIZE_FALLBACK = 256

# Go's goroutine status codes (runtime2.rs keeps the same numbers).
GSTATUS = {0: "idle", 1: "runnable", 2: "running", 3: "syscall", 4: "waiting", 6: "dead", 9: "preempted"}
G_IDLE, G_RUNNABLE, G_RUNNING, G_SYSCALL, G_WAITING, G_DEAD = 0, 1, 2, 3, 4, 6
PSTATUS = {0: "idle", 1: "running", 2: "syscall", 3: "gcstop", 4: "dead"}

# WaitReason variant -> the text Go prints (WaitReason::as_str in runtime2.rs).
# A variant missing here is shown as its name split into words, and
# `info gmpos check` lists it.
WAIT_REASONS = {
    "Zero": "",
    "ChanReceive": "chan receive",
    "ChanSend": "chan send",
    "ChanReceiveNilChan": "chan receive (nil chan)",
    "ChanSendNilChan": "chan send (nil chan)",
    "Select": "select",
    "SelectNoCases": "select (no cases)",
    "Sleep": "sleep",
    "SyncMutexLock": "sync.Mutex.Lock",
    "Semacquire": "semacquire",
    "SyncWaitGroupWait": "sync.WaitGroup.Wait",
    "SyncOnce": "sync.Once",
    "Preempted": "preempted",
    "StopTheWorld": "stop the world",
    "Park": "park",
}

# Frames of these modules are the runtime's, not the program's: `info
# goroutines` names the first frame outside them as where a goroutine waits.
RUNTIME_PREFIXES = ("kernel::runtime::", "kernel::sync::", "kernel::arch::", "core::", "alloc::")

# mcall is inline asm in its caller (e.g. gopark, or a goroutine's own
# function for gosched): it pushes rbx, saves rsp in gobuf.sp (so rbx sits at
# gobuf.sp), rbp in gobuf.bp, and its resume label in gobuf.pc. The code at
# that label is always `pop rbx; sti` (switch.rs): those two bytes at a saved
# pc say the goroutine stopped in mcall. It resumes with rsp = gobuf.sp + 8.
MCALL_RESUME_CODE = b"\x5b\xfb"

SYM = {
    "allgs": "kernel::runtime::proc::ALLGS",
    "sched": "kernel::runtime::proc::SCHED",
    "allp": "kernel::runtime::proc::ALLP",
    "allm": "kernel::runtime::proc::ALLM",
    "gomaxprocs": "kernel::runtime::proc::GOMAXPROCS",
    "ncpu": "kernel::runtime::proc::NCPU",
    "cpus": "kernel::arch::x86_64::percpu::CPUS",
    "lockedm_needp": "kernel::runtime::proc::LOCKEDM_NEEDP",
    "timers_added": "kernel::runtime::time::TIMERS_ADDED",
    "timers_fired": "kernel::runtime::time::TIMERS_FIRED",
}
TYPE = {
    "G": "kernel::runtime::runtime2::G",
    "M": "kernel::runtime::runtime2::M",
    "P": "kernel::runtime::runtime2::P",
    "WaitReason": "kernel::runtime::runtime2::WaitReason",
    "AsyncCtx": "kernel::arch::x86_64::switch::AsyncCtx",
}
FUNC = {
    "gostart": "kernel::arch::x86_64::switch::gostart",
    "async_resume": "kernel::arch::x86_64::switch::async_resume",
    "goexit": "kernel::arch::x86_64::switch::goexit",
}


NO_DEBUG_HINT = ("is this a gmpos kernel ELF with full debug info? A --release kernel has only line tables "
                 "(debug = 1 in kernel/Cargo.toml): build it with CARGO_PROFILE_RELEASE_DEBUG=2")


class Bad(Exception):
    """The kernel's state is not what it should be (or not readable)."""


# What a command catches per goroutine, queue or line: a broken kernel can
# make gdb itself fail in many ways (a value it cannot read or decode), and
# one bad item must not stop the others from printing.
Oops = (Bad, gdb.error, RuntimeError, ValueError, TypeError, KeyError, OverflowError, IndexError)


# ---------------------------------------------------------------------------
# Memory and layout

def inferior():
    inf = gdb.selected_inferior()
    if inf is None or inf.pid == 0:
        raise Bad("no running kernel (connect first: target remote :1234)")
    return inf


def read_bytes(addr, n):
    if addr <= 0 or addr + n > 1 << 64:
        raise Bad("bad address %#x" % addr)
    try:
        return bytes(inferior().read_memory(addr, n))
    except gdb.MemoryError:
        raise Bad("cannot read %d bytes at %#x" % (n, addr))


def read_uint(addr, size=8):
    return int.from_bytes(read_bytes(addr, size), "little")


_types = {}


def ktype(key):
    t = _types.get(key)
    if t is None:
        name = TYPE.get(key, key)
        try:
            t = gdb.lookup_type(name).strip_typedefs()
        except gdb.error:
            raise Bad("type %s not found in the kernel's debug info (%s)" % (name, NO_DEBUG_HINT))
        _types[key] = t
    return t


_offsets = {}


def field(t, path):
    """(offset, type) of the dotted field `path` inside type `t`, from DWARF."""
    key = (str(t), path)
    r = _offsets.get(key)
    if r is not None:
        return r
    off, cur = 0, t
    for name in path.split("."):
        cur = cur.strip_typedefs()
        for f in cur.fields():
            if f.name == name:
                off += f.bitpos // 8
                cur = f.type
                break
        else:
            raise Bad("%s has no field %r (the kernel's layout changed: update tools/gdb/gmpos.py)" % (t, name))
    r = (off, cur.strip_typedefs())
    _offsets[key] = r
    return r


def rd(addr, tkey, path):
    """The field `path` of the `tkey` struct at `addr`, as an unsigned integer.

    Works for every wrapper the kernel uses around a scalar (AtomicU32,
    OwnerCell<u64>, Cell<Option<NonNull<G>>>, AtomicPtr, a fieldless enum...):
    they all have the scalar's size and representation.
    """
    off, t = field(ktype(tkey) if isinstance(tkey, str) else tkey, path)
    if t.sizeof not in (1, 2, 4, 8):
        raise Bad("field %s is %d bytes, not a scalar" % (path, t.sizeof))
    return read_uint(addr + off, t.sizeof)


def rd_mask(addr, tkey, path):
    """The bitmap field `path` (gmp_core::pmask::Mask/PMask: little-endian
    64-bit words) of the `tkey` struct at `addr`, as one integer: bit i is
    P or M i."""
    off, t = field(ktype(tkey) if isinstance(tkey, str) else tkey, path)
    if t.sizeof % 8:
        raise Bad("field %s is %d bytes, not a bitmap of 64-bit words" % (path, t.sizeof))
    return read_uint(addr + off, t.sizeof)


def symbol_addr(key):
    name = SYM[key]
    sym = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
    if sym is None:
        raise Bad("symbol %s not found (%s)" % (name, NO_DEBUG_HINT))
    return sym, int(sym.value().address)


def global_uint(key):
    sym, addr = symbol_addr(key)
    return read_uint(addr, sym.type.strip_typedefs().sizeof)


_funcs = {}


_minsyms = {}
_syms = {}


def _clear_caches(_event=None):
    _funcs.clear()
    _minsyms.clear()
    _syms.clear()
    _types.clear()
    _offsets.clear()


gdb.events.new_objfile.connect(_clear_caches)


def pc_minsym(pc):
    r = _minsyms.get(pc)
    if r is None:
        r = _minsyms[pc] = _pc_minsym(pc)
    return r


def _pc_minsym(pc):
    """(name without the crate hash, offset) of the ELF symbol containing pc,
    or (None, None). The context-switch functions are naked asm without
    DWARF, so only the ELF's symbol table knows them."""
    try:
        o = gdb.execute("info symbol %#x" % pc, to_string=True)
    except gdb.error:
        return None, None
    # One line "NAME [+ OFF] in section S"; other lines (e.g. the echo of
    # `set trace-commands on`) are not ours.
    for line in o.splitlines():
        m = re.match(r"^(\S.*?)(?: \+ (\d+))? in section \S+", line)
        if m:
            return short(m.group(1)).strip(), int(m.group(2) or 0)
    return None, None


def func_start(key):
    """Address of a kernel function, by its ELF symbol, or None."""
    if key in _funcs:
        return _funcs[key]
    r = None
    want = FUNC[key]
    try:
        o = gdb.execute("info functions %s$" % want.split("::")[-1], to_string=True)
        for line in o.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0].startswith("0x") and short(parts[1]) == want:
                r = int(parts[0], 16)
    except gdb.error:
        r = None
    _funcs[key] = r
    return r


def in_func(pc, key):
    return pc_minsym(pc)[0] == FUNC[key]


def is_mcall_resume(pc):
    """Is pc an mcall resume label (see MCALL_RESUME_CODE)?"""
    try:
        return read_bytes(pc, len(MCALL_RESUME_CODE)) == MCALL_RESUME_CODE
    except Bad:
        return False


# ---------------------------------------------------------------------------
# Symbolising

def short(name):
    # Minimal symbols carry the crate hash: kernel[5330a4080a301e73]::...
    return re.sub(r"\[[0-9a-f]{16}\]", "", name)


def symbolise(pc, is_return=False):
    r = _syms.get((pc, is_return))
    if r is None:
        r = _syms[(pc, is_return)] = _symbolise(pc, is_return)
    return r


def _symbolise(pc, is_return=False):
    """(function, 'file:line' or '', offset, [inlined functions, innermost
    first]) for pc. A return address is looked up at pc-1, inside the call
    instruction, as gdb does; except a function's first byte (goexit is
    planted as a return address without a call)."""
    look = pc - 1 if is_return and pc > 0 and pc_minsym(pc)[1] != 0 else pc
    name, off, where, inlined = None, None, "", []
    try:
        b = gdb.block_for_pc(look)
        # Innermost first: inlined calls are blocks with a function too; the
        # real function is the one whose parent is the file's static block.
        while b is not None and not b.is_global and not b.is_static:
            if b.function is not None:
                if b.superblock is None or b.superblock.is_static:
                    name = b.function.print_name
                    off = pc - b.start
                    break
                inlined.append(short(b.function.print_name))
            b = b.superblock
    except (gdb.error, RuntimeError):
        name = None
    if name is None:
        inlined = []
        n, o = pc_minsym(look)
        if n is not None:
            name, off = n, o + (pc - look)
    try:
        sal = gdb.find_pc_line(look)
        if sal.symtab is not None and sal.line:
            where = "%s:%d" % (short_path(sal.symtab.filename), sal.line)
    except (gdb.error, RuntimeError):
        pass
    return (short(name) if name else "??"), where, off, inlined


def short_path(f):
    # The toolchain's sources: .../rustlib/src/rust/library/core/src/hint.rs -> library/core/src/hint.rs
    i = f.find("/rustlib/src/rust/")
    return f[i + len("/rustlib/src/rust/"):] if i >= 0 else f


def fmt_pc(pc, is_return=False, show_inlined=True):
    name, where, off, inlined = symbolise(pc, is_return)
    s = name if not off else "%s+%d" % (name, off)
    if inlined and show_inlined:
        s += " [inlined: %s]" % " <- ".join(inlined)
    return s + (" (%s)" % where if where else "")


def is_runtime(name):
    return name.startswith(RUNTIME_PREFIXES) or name.startswith("<kernel::") or name == "??"


# ---------------------------------------------------------------------------
# The kernel's state

class GInfo:
    """One goroutine, read from memory. `error` is set if it could not be."""

    def __init__(self, addr):
        self.addr = addr
        self.error = None
        try:
            if addr % 8:
                raise Bad("misaligned g pointer")
            # One read of the whole g (a remote round trip per field would
            # make a list of thousands of goroutines slow), decoded by DWARF.
            gt = ktype("G")
            buf = read_bytes(addr, gt.sizeof)

            def get(path):
                off, t = field(gt, path)
                if t.sizeof not in (1, 2, 4, 8):
                    raise Bad("field %s is %d bytes, not a scalar" % (path, t.sizeof))
                return int.from_bytes(buf[off:off + t.sizeof], "little")

            self.goid = get("goid")
            self.status = get("atomicstatus")
            self.stack_lo = get("stack_lo")
            self.stack_hi = get("stack_hi")
            self.sp = get("sched.sp")
            self.pc = get("sched.pc")
            self.bp = get("sched.bp")
            self.ret = get("sched.ret")
            self.reason = wait_reason(get("waitreason"))
            self.lastcpu = get("lastcpu")
            self.lockedm = get("lockedm")
            self.parent = get("parent_goid")
            self.preempt = get("preempt")
            if self.status not in GSTATUS:
                raise Bad("goroutine %d: status %d is not a goroutine status (corrupted g?)" % (self.goid, self.status))
            if not (self.stack_lo < self.stack_hi and self.stack_hi - self.stack_lo <= 1 << 30):
                raise Bad("goroutine %d: bad stack bounds [%#x, %#x)" % (self.goid, self.stack_lo, self.stack_hi))
        except Oops as e:
            self.error = str(e)

    @property
    def startfn(self):
        """The entry closure's type name (`g.startfn`), read on demand."""
        try:
            return read_str(self.addr, "G", "startfn")
        except Oops as e:
            return "<startfn unreadable: %s>" % e

    @property
    def name(self):
        return "goroutine %d" % self.goid if self.error is None else "g %#x" % self.addr

    def status_name(self):
        return GSTATUS.get(self.status, "status %d" % self.status)

    def in_stack(self, a):
        return self.stack_lo <= a < self.stack_hi


def read_str(addr, tkey, path):
    """A &'static str field (inside its OwnerCell), for display: at most 200 bytes."""
    off, t = field(ktype(tkey), path)
    poff, _ = find_field(t, "data_ptr")
    loff, _ = find_field(t, "length")
    n = read_uint(addr + off + loff)
    if n == 0:
        return ""
    return read_bytes(read_uint(addr + off + poff), min(n, 200)).decode("utf-8", "replace")


def find_field(t, name, depth=0):
    """(offset, type) of the first field called `name` anywhere inside t."""
    t = t.strip_typedefs()
    if depth > 8 or t.code not in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
        raise Bad("%s has no field %r" % (t, name))
    for f in t.fields():
        if f.name == name and hasattr(f, "bitpos"):
            return f.bitpos // 8, f.type.strip_typedefs()
    for f in t.fields():
        if hasattr(f, "bitpos") and f.type is not None:
            try:
                o, ft = find_field(f.type, name, depth + 1)
                return f.bitpos // 8 + o, ft
            except Bad:
                pass
    raise Bad("%s has no field %r" % (t, name))


_reason_names = None


def wait_reason(v):
    global _reason_names
    if _reason_names is None:
        _reason_names = {}
        try:
            for f in ktype("WaitReason").fields():
                _reason_names[f.enumval] = f.name.split("::")[-1]
        except (Bad, gdb.error, TypeError):
            pass
    name = _reason_names.get(v)
    if name is None:
        return "waitreason %d?" % v
    if name in WAIT_REASONS:
        return WAIT_REASONS[name]
    return re.sub(r"(?<!^)([A-Z])", r" \1", name).lower()


class Kernel:
    """A snapshot of the scheduler's structures, read once per command."""

    def __init__(self):
        self.errors = []
        inferior()
        try:
            self.gomaxprocs = global_uint("gomaxprocs")
            self.ncpu = global_uint("ncpu")
        except Oops as e:
            raise Bad("cannot read the scheduler's globals (%s): has the kernel booted yet? (gdb stops QEMU "
                      "in the firmware first: `continue`, then Ctrl-C)" % e)
        self.ps = []   # (index, address)
        self.ms = []
        _, allp = symbol_addr("allp")
        _, allm = symbol_addr("allm")
        if not 0 < self.ncpu <= 64 or not 0 < self.gomaxprocs <= 64:
            raise Bad("ncpu=%d gomaxprocs=%d: not plausible (is the kernel booted yet?)" % (self.ncpu, self.gomaxprocs))
        for i in range(self.gomaxprocs):
            a = read_uint(allp + 8 * i)
            if a:
                self.ps.append((i, a))
            else:
                self.errors.append("allp[%d] is null" % i)
        for i in range(self.ncpu):
            a = read_uint(allm + 8 * i)
            if a:
                self.ms.append((i, a))
            else:
                self.errors.append("allm[%d] is null" % i)
        self._gs = None
        self._where = None
        self._ginfos = None

    # --- goroutines ---

    def allgs(self):
        """Addresses of every G: allgs, plus any G a P, M or queue points at
        that allgs lacks (a sign of corruption, but still a goroutine)."""
        if self._gs is not None:
            return self._gs
        gs = []
        try:
            sym, base = symbol_addr("allgs")
            t = sym.type.strip_typedefs()
            voff, vt = field(t, "data.value")
            lenoff, _ = field(vt, "len")
            n = read_uint(base + voff + lenoff)
            ptr = vec_ptr(vt, base + voff)
            if n > MAX_GS:
                raise Bad("allgs has %d entries (more than %d: corrupted?)" % (n, MAX_GS))
            raw = read_bytes(ptr, 8 * n) if n else b""
            gs = [int.from_bytes(raw[8 * i:8 * i + 8], "little") for i in range(n)]
            if rd(base, t, "locked"):
                self.errors.append("allgs's lock is held: a goroutine may be being added right now")
        except Oops as e:
            self.errors.append("cannot read allgs: %s" % e)
        known = set(gs)
        for g in self.where_map():
            if g not in known:
                gs.append(g)
                known.add(g)
                self.errors.append("g %#x is on a queue or core but not in allgs" % g)
        self._gs = gs
        return gs

    def goroutines(self):
        if self._ginfos is None:
            self._ginfos = [GInfo(a) for a in self.allgs()]
        return self._ginfos

    def find(self, goid):
        for g in self.goroutines():
            if g.error is None and g.goid == goid and g.status != G_DEAD:
                return g
        for g in self.goroutines():
            if g.error is None and g.goid == goid:
                return g
        raise Bad("no goroutine %d" % goid)

    # --- where each G is ---

    def where_map(self):
        """g address -> where it is: 'P0 runnext', 'P0 runq[2]', 'global[0]',
        ('running', m index)."""
        if self._where is not None:
            return self._where
        w = {}
        self._where = w
        for i, m in self.ms:
            try:
                g = rd(m, "M", "curg")
                if g:
                    w[g] = ("running", i)
            except Oops as e:
                self.errors.append("M%d: %s" % (i, e))
        for i, p in self.ps:
            try:
                q = self.runq(p)
                if q.runnext:
                    w.setdefault(q.runnext, "P%d runnext" % i)
                for k, g in enumerate(q.gs):
                    w.setdefault(g, "P%d runq[%d]" % (i, k))
                if q.error:
                    self.errors.append("P%d: %s" % (i, q.error))
            except Oops as e:
                self.errors.append("P%d: %s" % (i, e))
        gq, err = self.global_runq()
        for k, g in enumerate(gq):
            w.setdefault(g, "global[%d]" % k)
        if err:
            self.errors.append("global run queue: %s" % err)
        return w

    def runq(self, p):
        return RunQ(p)

    def sched_base(self):
        return symbol_addr("sched")

    def global_runq(self):
        """(G addresses in order, error or None), walking schedlink, bounded."""
        sym, base = self.sched_base()
        t = sym.type.strip_typedefs()
        try:
            qoff, qt = field(t, "lock.data.value.runq")
            head = rd(base + qoff, qt, "head")
            n = rd(base + qoff, qt, "len")
            return walk_glist(head, min(n, MAX_QUEUE) if n else 0, "the global queue")
        except Oops as e:
            return [], str(e)

    def m_of_cpu(self, i):
        for j, m in self.ms:
            if j == i:
                return m
        return None


def vec_ptr(vt, vaddr):
    """The buffer pointer of the Vec of type vt at vaddr. The path to it has
    changed between Rust versions (buf.ptr, buf.inner.ptr...): take the first
    pointer inside `buf`."""
    boff, bt = field(vt, "buf")

    def find(t, off, depth):
        t = t.strip_typedefs()
        if t.code == gdb.TYPE_CODE_PTR:
            return off
        if depth > 6 or t.code not in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
            return None
        for f in t.fields():
            if f.name in ("cap", "alloc", "_marker") or not hasattr(f, "bitpos"):
                continue
            r = find(f.type, off + f.bitpos // 8, depth + 1)
            if r is not None:
                return r
        return None

    off = find(bt, boff, 0)
    if off is None:
        raise Bad("cannot find the buffer pointer of %s" % vt)
    return read_uint(vaddr + off)


def walk_glist(head, limit, what):
    """Follow G.schedlink from head for `limit` links (the list's own length),
    stopping at a cycle, a wild pointer or the end."""
    out, seen, g = [], set(), head
    while g and len(out) < limit:
        if g in seen:
            return out, "cycle in %s at g %#x after %d entries" % (what, g, len(out))
        if g % 8:
            return out, "misaligned link %#x in %s after %d entries" % (g, what, len(out))
        seen.add(g)
        out.append(g)
        try:
            g = rd(g, "G", "schedlink")
        except Oops as e:
            return out, "%s: %s" % (what, e)
    if g and len(out) >= limit:
        return out, None if limit < MAX_QUEUE else "%s longer than %d: stopped" % (what, MAX_QUEUE)
    if len(out) < limit:
        return out, "%s ends after %d entries but says it has %d" % (what, len(out), limit)
    return out, None


class RunQ:
    """A P's local run queue: runnext and the ring between head and tail."""

    def __init__(self, p):
        self.error = None
        off, t = field(ktype("P"), "runq")
        base = p + off
        self.head = rd(base, t, "head")
        self.tail = rd(base, t, "tail")
        self.runnext = rd(base, t, "runnext")
        roff, rt = field(t, "ring")
        size = rt.sizeof // 8 or RUNQ_SIZE_FALLBACK
        n = (self.tail - self.head) & 0xFFFFFFFF
        self.gs = []
        if n > size:
            self.error = "local run queue: tail-head = %d > %d slots (corrupted, or read mid-update)" % (n, size)
            n = 0
        for k in range(n):
            self.gs.append(read_uint(base + roff + 8 * ((self.head + k) % size)))


# ---------------------------------------------------------------------------
# Cores (gdb threads) and their registers

class KeepSelection:
    """Put the user's selected thread and frame back afterwards (by level:
    frame objects do not survive a thread switch or a register write), and
    quietly (Frame.select prints nothing)."""

    def __enter__(self):
        self.thread = gdb.selected_thread()
        try:
            self.level = gdb.selected_frame().level()
        except (gdb.error, RuntimeError, AttributeError):  # Frame.level: gdb 11+
            self.level = 0
        return self

    def __exit__(self, *exc):
        try:
            if self.thread is not None and self.thread.is_valid():
                self.thread.switch()
            f = gdb.newest_frame()
            for _ in range(self.level):
                if f.older() is None:
                    break
                f = f.older()
            f.select()
        except (gdb.error, RuntimeError):
            pass
        return False


def threads_by_cpu(k):
    """kernel cpu index -> gdb thread. The kernel points each core's GS base
    at its own entry of percpu::CPUS; QEMU shows each vCPU as a thread, and
    (on x86_64) its gs_base register. Without gs_base: the thread order."""
    out = {}
    inf = inferior()
    threads = sorted(inf.threads(), key=lambda t: t.num)
    try:
        sym, cpus = symbol_addr("cpus")
        stride = sym.type.strip_typedefs().target().sizeof
    except Bad:
        cpus, stride = None, None
    with KeepSelection():
        for n, t in enumerate(threads):
            idx = None
            if cpus is not None:
                try:
                    t.switch()
                    gs = int(gdb.newest_frame().read_register("gs_base")) & 0xFFFFFFFFFFFFFFFF
                    if gs >= cpus and (gs - cpus) % stride == 0 and (gs - cpus) // stride < 64:
                        idx = (gs - cpus) // stride
                except (gdb.error, ValueError, RuntimeError):
                    idx = None
            out[n if idx is None else idx] = t
    return out


def thread_regs(t, names=("rip", "rsp", "rbp")):
    with KeepSelection():
        t.switch()
        f = gdb.newest_frame()
        return {r: int(f.read_register(r)) & 0xFFFFFFFFFFFFFFFF for r in names}


# ---------------------------------------------------------------------------
# Where a goroutine is stopped, and its frame-pointer backtrace

class Start:
    """The registers a goroutine resumes with: kind is 'running' (its core's
    registers), 'mcall' (saved by mcall: parked, yielded, runnable),
    'async' (asynchronous preemption: the interrupt frame on its stack),
    'fresh' (never ran), with pc/sp/bp and, where known, all registers."""

    def __init__(self, k, g, cpu_threads=None):
        self.kind = None
        self.regs = {}
        self.note = ""
        self.cpu = None
        where = k.where_map().get(g.addr)
        if isinstance(where, tuple) and where[0] == "running":
            self.cpu = where[1]
            threads = cpu_threads if cpu_threads is not None else threads_by_cpu(k)
            t = threads.get(self.cpu)
            if t is None:
                raise Bad("%s runs on cpu%d, which has no gdb thread" % (g.name, self.cpu))
            self.thread = t
            self.kind = "running"
            self.regs = thread_regs(t, ("rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi",
                                        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"))
            self.pc, self.sp, self.bp = self.regs["rip"], self.regs["rsp"], self.regs["rbp"]
            return
        if g.status == G_DEAD:
            raise Bad("%s is dead (its stack is kept for reuse; nothing to unwind)" % g.name)
        if g.status in (G_RUNNING, G_SYSCALL):
            self.note = "status %s but no core runs it (caught mid-switch, or corrupted): its last saved context" \
                        % g.status_name()
        if in_func(g.pc, "gostart") or g.pc == func_start("gostart"):
            self.kind = "fresh"
            self.pc, self.sp, self.bp = g.ret, g.sp, 0
            return
        if g.pc == func_start("async_resume"):
            self.kind = "async"
            ctx = g.sp
            if not g.in_stack(ctx):
                raise Bad("%s: saved interrupt frame at %#x is outside its stack [%#x, %#x)"
                          % (g.name, ctx, g.stack_lo, g.stack_hi))
            foff, ft = field(ktype("AsyncCtx"), "frame")
            for f in ft.fields():
                self.regs[{"rip": "rip", "rflags": "eflags"}.get(f.name, f.name)] = \
                    read_uint(ctx + foff + f.bitpos // 8, f.type.sizeof)
            self.pc, self.sp, self.bp = self.regs["rip"], self.regs["rsp"], self.regs["rbp"]
            self.note = "preempted asynchronously; registers from the interrupt frame at %#x" % ctx
            return
        if is_mcall_resume(g.pc):
            # The pc is the resume label inside the function that called
            # mcall, not a return address. r12-r15 are not saved: the
            # compiler spilled whatever it kept in them to the frame.
            self.kind = "mcall"
            if not g.in_stack(g.sp) or not g.in_stack(g.sp + 8):
                raise Bad("%s: saved sp %#x is outside its stack [%#x, %#x)" % (g.name, g.sp, g.stack_lo, g.stack_hi))
            self.regs["rbx"] = read_uint(g.sp)
            self.pc = g.pc
            self.sp = g.sp + 8
            self.bp = g.bp
            self.regs.update(rip=self.pc, rsp=self.sp)
            return
        raise Bad("%s: saved pc %#x (%s) is not a resume point the kernel uses (mcall, async_resume, gostart)"
                  % (g.name, g.pc, fmt_pc(g.pc)))


def frames(g, st):
    """[(pc, is_return_address)] by the frame-pointer chain, and an error or
    None. Bounded by MAX_FRAMES, and each frame pointer must be above the
    last (the stack grows down) and, for a goroutine that is not running,
    inside its stack."""
    out = [(st.pc, False)]
    if st.kind == "fresh":
        return out, None
    fp = st.bp
    while len(out) < MAX_FRAMES:
        if fp == 0:
            return out, None
        if fp % 8:
            return out, "frame pointer %#x is misaligned" % fp
        if st.kind != "running" and not (g.in_stack(fp) and g.in_stack(fp + 8)):
            return out, "frame pointer %#x is outside the goroutine's stack [%#x, %#x)" % (fp, g.stack_lo, g.stack_hi)
        try:
            nfp = read_uint(fp)
            ret = read_uint(fp + 8)
        except Oops as e:
            return out, str(e)
        if ret == 0:
            return out, None
        out.append((ret, True))
        if in_func(ret - 1, "goexit"):
            return out, None
        if nfp != 0 and nfp <= fp:
            return out, "frame pointer chain goes down (%#x after %#x): stopped" % (nfp, fp)
        fp = nfp
    return out, "more than %d frames: stopped" % MAX_FRAMES


def first_user_frame(g, st):
    fs, _ = frames(g, st)
    for pc, ret in fs:
        name, where, _, inlined = symbolise(pc, ret)
        for n in inlined + [name]:
            if not is_runtime(n):
                return n, where
    return None, None


# ---------------------------------------------------------------------------
# Commands

def out(s=""):
    gdb.write(s + "\n")


def errline(s):
    gdb.write("gmpos: " + s + "\n")


class InfoGoroutines(gdb.Command):
    """List every goroutine of the gmpos kernel: info goroutines [all]

Id, status, wait reason, where it is (the core running it, a P's runnext or
local queue slot, the global queue, or the core it last ran on), and where
it runs or resumes: the current pc of a running goroutine, or the saved pc
of a parked or runnable one, with the first frame outside the runtime.
`*` marks the goroutines running now. `all` also lists dead goroutines."""

    def __init__(self):
        super().__init__("info goroutines", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        try:
            show_dead = arg.strip() == "all"
            k = Kernel()
            gs = k.goroutines()
            where = k.where_map()
            threads = threads_by_cpu(k)
            out("  %-5s %-10s %-24s %-12s %s" % ("Id", "Status", "Wait reason", "On", "Where"))
            ok = [g for g in gs if g.error is None]
            for g in sorted(ok, key=lambda g: g.goid):
                if g.status in (G_DEAD, G_IDLE) and not show_dead:
                    continue
                w = where.get(g.addr)
                running = isinstance(w, tuple)
                on = ("P%s cpu%d" % (p_index(k, w[1]), w[1])) if running else w
                if not on:
                    # A runnable G in no queue is lost, or (caught mid-move)
                    # in a stealer's hands; anything else just ran there last.
                    on = ("in no queue (last cpu%d)" if g.status == G_RUNNABLE else "last cpu%d") % g.lastcpu
                reason = g.reason if g.status == G_WAITING else ""
                try:
                    st = Start(k, g, threads)
                    loc = fmt_pc(st.pc, show_inlined=False)
                    if st.kind == "fresh":
                        loc = "not started: " + (g.startfn or fmt_pc(st.pc))
                    else:
                        uname, _ = first_user_frame(g, st)
                        if uname and not loc.startswith(uname):
                            loc += " in " + uname
                        if st.kind == "async":
                            reason = "preempted (async)"
                except Oops as e:
                    loc = "?? (%s)" % e
                out("%s %-5d %-10s %-24s %-12s %s" % ("*" if running else " ", g.goid, g.status_name(),
                                                     reason, on, loc))
            for g in gs:
                if g.error is not None:
                    errline("g %#x: %s" % (g.addr, g.error))
            for e in k.errors:
                errline(e)
        except Oops as e:
            errline(str(e))


def p_index(k, cpu):
    m = k.m_of_cpu(cpu)
    if m is None:
        return "?"
    try:
        p = rd(m, "M", "p")
        if not p:
            return "-"
        return str(rd(p, "P", "id"))
    except Bad:
        return "?"


class Goroutine(gdb.Command):
    """Backtrace or inspect one goroutine of the gmpos kernel.

goroutine N bt        backtrace by the frame-pointer chain, from its core's
                      registers (running), its saved gobuf (parked or
                      runnable) or its saved interrupt frame (preempted
                      asynchronously)
goroutine all bt      the same for every goroutine
goroutine N frame K   frame K and its locals, K as gdb numbers frames (it counts
                      inlined calls: see `goroutine N bt full`); also
                      `goroutine N frame function NAME`
goroutine N CMD       run the gdb command CMD with goroutine N's registers
                      loaded into the selected core (restored afterwards),
                      e.g. `goroutine 7 bt full`, `goroutine 7 info registers`

For a parked goroutine, mcall saved rbx, rbp and r12-r15 (the registers a
function call keeps), so gdb's own unwinder sees exact callee-saved state;
an asynchronously preempted one has every register saved. Caller-saved
registers of a parked goroutine are gone, so gdb may show some locals as
<optimized out>."""

    def __init__(self):
        super().__init__("goroutine", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        words = arg.split()
        if len(words) < 2:
            errline("usage: goroutine N bt | goroutine all bt | goroutine N frame K | goroutine N CMD")
            return
        try:
            k = Kernel()
            threads = threads_by_cpu(k)
            if words[0] == "all":
                for g in sorted((g for g in k.goroutines() if g.error is None), key=lambda g: g.goid):
                    if g.status in (G_DEAD, G_IDLE):
                        continue
                    self.run(k, g, words[1:], threads)
                    out()
                return
            try:
                goid = int(words[0], 0)
            except ValueError:
                errline("goroutine: %r is not a goroutine id" % words[0])
                return
            self.run(k, k.find(goid), words[1:], threads)
        except Oops as e:
            errline(str(e))

    def run(self, k, g, cmd, threads):
        try:
            if g.error is not None:
                raise Bad(g.error)
            if cmd in (["bt"], ["backtrace"], ["where"]):
                backtrace(k, g, threads)
            elif cmd[0] == "frame" and len(cmd) >= 2:
                with_goroutine(k, g, threads, [" ".join(cmd), "info locals"])
            else:
                with_goroutine(k, g, threads, [" ".join(cmd)])
        except Oops as e:
            errline(str(e))


def header(k, g):
    w = k.where_map().get(g.addr)
    s = "goroutine %d [%s" % (g.goid, g.reason if g.status == G_WAITING else g.status_name())
    if isinstance(w, tuple):
        s += ", cpu%d" % w[1]
    elif w:
        s += ", " + w
    return s + "]:"


def backtrace(k, g, threads):
    out(header(k, g))
    st = Start(k, g, threads)
    if st.note:
        out("    (%s)" % st.note)
    if st.kind == "fresh":
        out("#0  not started yet: will run %s" % (g.startfn or fmt_pc(st.pc)))
    else:
        fs, err = frames(g, st)
        for i, (pc, ret) in enumerate(fs):
            out("#%-2d %#x in %s" % (i, pc, fmt_pc(pc, ret)))
        if err:
            out("    (backtrace stopped: %s)" % err)
    if g.parent:
        out("created by goroutine %d%s" % (g.parent, (" as " + g.startfn) if g.startfn else ""))


def with_goroutine(k, g, threads, cmds):
    """Go's approach (runtime-gdb.py): load the goroutine's registers into a
    core, run the commands, put the core's registers back."""
    st = Start(k, g, threads)
    if st.kind == "fresh":
        raise Bad("%s has not started: it has no frames yet" % g.name)
    if st.kind == "running":
        with KeepSelection():
            st.thread.switch()
            gdb.newest_frame().select()
            for c in cmds:
                gdb.execute(c)
        return
    regs = dict(st.regs)
    regs.update(rip=st.pc, rsp=st.sp, rbp=st.bp)
    regs.pop("cs", None)
    regs.pop("ss", None)
    regs.pop("eflags", None)
    th = gdb.selected_thread()
    if th is None or not th.is_stopped():
        raise Bad("the kernel must be stopped (interrupt it first)")
    keep = KeepSelection().__enter__()
    f0 = gdb.newest_frame()
    saved = {}
    for r in regs:
        saved[r] = int(f0.read_register(r)) & 0xFFFFFFFFFFFFFFFF
    f0.select()
    try:
        try:
            for r, v in regs.items():
                gdb.execute("set $%s = %#x" % (r, v), to_string=True)
        except gdb.error as e:
            raise Bad("cannot load %s's registers into the core (%s); `goroutine %d bt` needs no register "
                      "writes" % (g.name, e, g.goid))
        out("(%s's registers are loaded into thread %d for this command; restored afterwards)" % (g.name, th.num))
        for c in cmds:
            gdb.execute(c)
    finally:
        gdb.newest_frame().select()
        for r, v in saved.items():
            try:
                gdb.execute("set $%s = %#x" % (r, v), to_string=True)
            except gdb.error as e:
                errline("could not restore $%s = %#x: %s" % (r, v, e))
        keep.__exit__(None, None, None)


class InfoRunq(gdb.Command):
    """The gmpos kernel's run queues: info runq

Per P: status, its M, runnext, the local queue in order, its timers and
free Gs; the global run queue in order; per M: its core, P, whether it is
spinning or parked, and the goroutine it runs."""

    def __init__(self):
        super().__init__("info runq", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        try:
            k = Kernel()
            for i, p in k.ps:
                try:
                    show_p(k, i, p)
                except Oops as e:
                    errline("P%d at %#x: %s" % (i, p, e))
            gq, err = k.global_runq()
            sym, base = k.sched_base()
            size = rd(base, sym.type.strip_typedefs(), "runqsize")
            out("global queue: runqsize=%d: %s" % (size, glist_str(gq)))
            if err:
                errline("global queue: %s" % err)
            try:
                if rd(base, sym.type.strip_typedefs(), "lock.locked"):
                    out("    (sched.lock is held: the global queue may be mid-update)")
            except Bad:
                pass
            for i, m in k.ms:
                try:
                    show_m(k, i, m)
                except Oops as e:
                    errline("M%d at %#x: %s" % (i, m, e))
        except Oops as e:
            errline(str(e))


def gname(a):
    if not a:
        return "-"
    g = GInfo(a)
    if g.error:
        return "g %#x (%s)" % (a, g.error)
    return "G%d" % g.goid


MAX_QUEUE_SHOWN = 64      # queue entries listed by info runq (all are counted)


def glist_str(gs):
    if not gs:
        return "[]"
    more = " ... %d more" % (len(gs) - MAX_QUEUE_SHOWN) if len(gs) > MAX_QUEUE_SHOWN else ""
    return "[%s%s]" % (" ".join(gname(g) for g in gs[:MAX_QUEUE_SHOWN]), more)


def show_p(k, i, p):
    st = rd(p, "P", "status")
    m = rd(p, "P", "m")
    mid = rd(m, "M", "id") if m else None
    q = RunQ(p)
    out("P%d: status=%s m=%s schedtick=%d syscalltick=%d preempt=%d" % (
        rd(p, "P", "id"), PSTATUS.get(st, str(st)), "M%d" % mid if mid is not None else "-",
        rd(p, "P", "schedtick"), rd(p, "P", "syscalltick"), rd(p, "P", "preempt")))
    out("    runnext: %s" % gname(q.runnext))
    out("    local queue (%d, head=%d tail=%d): %s" % (len(q.gs), q.head, q.tail, glist_str(q.gs)))
    if q.error:
        errline("P%d: %s" % (i, q.error))
    try:
        foff, ft = field(ktype("P"), "gfree")
        loff, lt = find_field(ft, "len")
        n = read_uint(p + foff + loff, lt.sizeof)
        out("    gfree: %d dead Gs kept for reuse" % n)
    except Oops as e:
        errline("P%d gfree: %s" % (i, e))
    show_timers(p)


def show_timers(p):
    toff, tt = field(ktype("P"), "timers")
    base = p + toff
    count = rd(base, tt, "count")
    nxt = rd(base, tt, "next")
    locked = rd(base, tt, "heap.locked")
    line = "    timers: %d" % count
    if count:
        line += ", earliest at %.3f s" % (nxt / 1e9)
    if locked:
        line += " (timer lock held: may be mid-update)"
    out(line)
    if not count:
        return
    # The heap itself: SpinLock<Heap(TimerHeap { slots: Vec<(when, Timer)> })>.
    try:
        hoff, ht = field(tt, "heap.data.value")
        heap = gdb.Value(base + hoff).cast(ht.strip_typedefs().pointer()).dereference()
        vec = value_field(heap, "slots")
        n = int(value_field(vec, "len"))
        ptr = first_pointer(vec)
        elem = vec.type.strip_typedefs().template_argument(0)
        if n > count + 1024:
            errline("timer heap len %d, but the count says %d (corrupted)" % (n, count))
            n = count
        slots = gdb.Value(ptr).cast(elem.pointer())
        for j in range(min(n, MAX_TIMERS_SHOWN)):
            out("      %s" % timer_str((slots + j).dereference()))
        if n > MAX_TIMERS_SHOWN:
            out("      ... %d more" % (n - MAX_TIMERS_SHOWN))
    except (Bad, gdb.error, RuntimeError) as e:
        errline("timers: %s" % e)


def value_field(v, name, depth=0):
    """The field `name` of the value v, looked for through nested (wrapper) structs."""
    t = v.type.strip_typedefs()
    try:
        fs = t.fields()
    except TypeError:
        fs = []
    for f in fs:
        if f.name == name:
            return v[f]
    if depth < 6:
        for f in fs:
            try:
                return value_field(v[f], name, depth + 1)
            except Bad:
                pass
    raise Bad("no field %s in %s" % (name, t))


def first_pointer(v, depth=0):
    """The first raw pointer inside v (a Vec's buffer), as an integer."""
    t = v.type.strip_typedefs()
    if t.code == gdb.TYPE_CODE_PTR:
        return int(v)
    if depth > 8:
        raise Bad("no pointer found")
    try:
        fs = t.fields()
    except TypeError:
        raise Bad("no pointer found")
    for f in fs:
        try:
            return first_pointer(v[f], depth + 1)
        except Bad:
            pass
    raise Bad("no pointer found")


def timer_str(slot):
    """One heap slot: Some((when, Timer { kind, seq }))."""
    s = str(slot)
    m = re.search(r"\((\d+), .*?Ready\((0x[0-9a-f]+)\)", s)
    if m:
        return "at %.3f s: ready %s" % (int(m.group(1)) / 1e9, gname(int(m.group(2), 16)))
    m = re.search(r"\((\d+), .*?Func\((.*?)\)", s)
    if m:
        return "at %.3f s: func %s" % (int(m.group(1)) / 1e9, m.group(2))
    return s


def show_m(k, i, m):
    p = rd(m, "M", "p")
    curg = rd(m, "M", "curg")
    spinning = rd(m, "M", "spinning")
    key = rd(m, "M", "park.key")
    halted = rd(m, "M", "park.halted")
    nextp = rd(m, "M", "nextp")
    lockedg = rd(m, "M", "lockedg")
    sym, base = k.sched_base()
    midle = rd_mask(base, sym.type.strip_typedefs(), "lock.data.value.midle")
    state = []
    if spinning:
        state.append("spinning")
    if midle & (1 << i):
        state.append("parked on midle")
    if halted:
        state.append("halted")
    if nextp:
        state.append("handed P%d" % rd(nextp, "P", "id"))
    if not state:
        state.append("running" if p else "no P")
    out("M%d: cpu%d apic=%d p=%s curg=%s lockedg=%s %s" % (
        i, rd(m, "M", "id"), rd(m, "M", "apic_id"), "P%d" % rd(p, "P", "id") if p else "-",
        gname(curg), gname(lockedg), ", ".join(state)))


class InfoSched(gdb.Command):
    """What schedtrace=N scheddetail=1 prints, read from memory: info sched

Works on a hung kernel: nothing is called, no lock is taken."""

    def __init__(self):
        super().__init__("info sched", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        try:
            k = Kernel()
            sym, base = k.sched_base()
            t = sym.type.strip_typedefs()
            line = "SCHED (from memory): gomaxprocs=%d idleprocs=%d threads=%d spinningthreads=%d needspinning=%d " \
                   "idlethreads=%d runqueue=%d" % (
                       k.gomaxprocs, rd(base, t, "npidle"), k.ncpu, rd(base, t, "nmspinning"),
                       rd(base, t, "needspinning"), rd(base, t, "nmidle"), rd(base, t, "runqsize"))
            extra = []
            extra.append("gcwaiting=%d" % rd(base, t, "gcwaiting"))
            try:
                extra.append("lockedm_needp=%#x" % global_uint("lockedm_needp"))
                extra.append("timers added=%d fired=%d" % (global_uint("timers_added"), global_uint("timers_fired")))
            except Oops as e:
                errline(str(e))
            out(line + " " + " ".join(extra))
            for i, p in k.ps:
                try:
                    m = rd(p, "P", "m")
                    toff, tt = field(ktype("P"), "timers")
                    out("  P%d: status=%d schedtick=%d syscalltick=%d m=%d runqsize=%d timerslen=%d" % (
                        rd(p, "P", "id"), rd(p, "P", "status"), rd(p, "P", "schedtick"), rd(p, "P", "syscalltick"),
                        rd(m, "M", "id") if m else -1, len(RunQ(p).gs), rd(p + toff, tt, "count")))
                except Oops as e:
                    errline("P%d: %s" % (i, e))
            for i, m in k.ms:
                try:
                    p = rd(m, "M", "p")
                    g = rd(m, "M", "curg")
                    lg = rd(m, "M", "lockedg")
                    out("  M%d: p=%d curg=%d spinning=%s lockedg=%d parks=%d wakeups=%d steals=%d" % (
                        rd(m, "M", "id"), rd(p, "P", "id") if p else -1, goid_or(g), "true" if rd(m, "M", "spinning") else "false",
                        goid_or(lg), rd(m, "M", "parks"), rd(m, "M", "wakeups"), rd(m, "M", "steals")))
                except Oops as e:
                    errline("M%d: %s" % (i, e))
            for g in k.goroutines():
                if g.error is not None:
                    errline("g %#x: %s" % (g.addr, g.error))
                    continue
                if g.status in (G_DEAD, G_IDLE):
                    continue
                lm = -1
                if g.lockedm:
                    try:
                        lm = rd(g.lockedm, "M", "id")
                    except Bad:
                        lm = -2
                out("  G%d: status=%d(%s) m=%d lockedm=%d" % (g.goid, g.status, g.reason if g.status == G_WAITING else "",
                                                             g.lastcpu, lm))
            for e in k.errors:
                errline(e)
        except Oops as e:
            errline(str(e))


def goid_or(a):
    if not a:
        return -1
    try:
        return rd(a, "G", "goid")
    except Bad:
        return -2


class InfoGmpos(gdb.Command):
    """Self-check of the gmpos gdb extension against this kernel: info gmpos check"""

    def __init__(self):
        super().__init__("info gmpos", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        problems = 0
        for key, name in TYPE.items():
            try:
                ktype(key)
            except Oops as e:
                errline(str(e))
                problems += 1
        for key in SYM:
            try:
                symbol_addr(key)
            except Oops as e:
                errline(str(e))
                problems += 1
        for key, name in FUNC.items():
            if func_start(key) is None:
                errline("function %s not found" % name)
                problems += 1
        try:
            for f in ktype("WaitReason").fields():
                n = f.name.split("::")[-1]
                if n not in WAIT_REASONS:
                    errline("WaitReason::%s has no text in WAIT_REASONS (shown as %r)" % (n, wait_reason(f.enumval)))
                    problems += 1
        except Oops as e:
            errline(str(e))
            problems += 1
        for path in ("goid", "atomicstatus", "stack_lo", "stack_hi", "sched.sp", "sched.pc", "sched.bp", "sched.ret",
                     "waitreason", "lastcpu", "lockedm", "parent_goid", "preempt", "schedlink"):
            try:
                field(ktype("G"), path)
            except Oops as e:
                errline(str(e))
                problems += 1
        out("gmpos gdb extension: %s" % ("OK" if problems == 0 else "%d problem(s)" % problems))


InfoGoroutines()
Goroutine()
InfoRunq()
InfoSched()
InfoGmpos()
gdb.write("gmpos: loaded goroutine support: info goroutines, goroutine N bt, info runq, info sched "
          "(help goroutine)\n")
