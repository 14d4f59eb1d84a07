// Command gobench measures Go's own scheduler with the same microbenchmarks
// as the kernel's benchkernel, and prints one line per result in the
// kernel's format:
//
//	BENCH go_<name> <value> <unit>
//
// It is a plain main (no testing package) so that it runs under qemu-user.
// Every benchmark runs for a wall-time budget (-budget, default 300ms): the
// operation count grows until one run takes about a third of the budget,
// two more runs of that size follow, and the best of the three is printed.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	budget = flag.Duration("budget", 300*time.Millisecond, "wall time per benchmark")
	only   = flag.String("only", "", "comma-separated substrings: run only the benchmarks whose name contains one (\"=name\": exactly that name)")
	probe  = flag.Bool("probe", false, "print \"ok\" and exit (used to check that qemu-user runs the binary)")
	wait   = flag.Duration("wait", 0, "sleep this long before the first benchmark (GO_WHERE=system: the Linux guest is still finishing its boot when it starts init)")
	ops    = flag.Int("n", 0, "run each benchmark once with exactly this many operations, instead of calibrating to -budget (ICOUNT=1 bench/go-baseline.sh counts instructions this way)")
	insn   = flag.Bool("insn", false, "time single instructions (as the kernel's bench=insn does) and exit")
)

var start = time.Now()

// nanotime is a monotonic clock in ns since start.
func nanotime() int64 { return int64(time.Since(start)) }

func report(name string, value float64, unit string) {
	fmt.Printf("BENCH go_%s %.1f %s\n", name, value, unit)
}

// withProcs runs f with GOMAXPROCS set to p, then restores it.
func withProcs(p int, f func()) {
	prev := runtime.GOMAXPROCS(p)
	defer runtime.GOMAXPROCS(prev)
	f()
}

// runOnce runs f(n) and returns ns per op and the wall time. f returns the
// time to account for, or a negative value to use the wall time of the call.
func runOnce(f func(n int) time.Duration, n int) (float64, time.Duration) {
	runtime.GC()
	t0 := time.Now()
	d := f(n)
	wall := time.Since(t0)
	if d < 0 {
		d = wall
	}
	return float64(d.Nanoseconds()) / float64(n), wall
}

// calibrate runs f(n) with a growing n until one run takes about budget,
// and returns that run's ns per op and its n.
func calibrate(budget time.Duration, f func(n int) time.Duration) (float64, int) {
	n := 1
	for {
		v, wall := runOnce(f, n)
		if wall >= budget || n >= 1<<30 {
			return v, n
		}
		// Aim a little past the budget, growing by at most 100x per step.
		next := int(float64(n) * 1.2 * float64(budget) / float64(wall+1))
		if next > 100*n {
			next = 100 * n
		}
		if wall < budget/20 || next <= n {
			// Short runs are noisy: only grow until they are long enough
			// to predict the final size from.
			if next > 10*n || next <= n {
				next = 10 * n
			}
		}
		n = next
	}
}

// reps is how many runs of budget/reps a figure is the best of: the host
// may be busy with other work, and the minimum is the least disturbed run.
const reps = 3

// measure returns the best ns per op of reps runs of about budget/reps
// (with -n: of one run of that many operations).
func measure(f func(n int) time.Duration) float64 {
	if *ops > 0 {
		v, _ := runOnce(f, *ops)
		return v
	}
	best, n := calibrate(*budget/reps, f)
	for r := 1; r < reps; r++ {
		if v, _ := runOnce(f, n); v < best {
			best = v
		}
	}
	return best
}

// --- spawn and exit -----------------------------------------------------

// spawnRound is the most goroutines alive at once: a round spawns this many,
// then waits for all of them. Small rounds measure the steady state (Gs and
// stacks reused from the free lists, like Go's BenchmarkCreateGoroutines);
// spawn_exit_burst spawns burstRound at once, as the kernel's spawn_exit
// does, which in Go mostly measures allocating new Gs and stacks.
const spawnRound = 1000
const burstRound = 50000

func spawnExit(n int) time.Duration { return spawnRounds(n, spawnRound) }

func spawnBurst(n int) time.Duration { return spawnRounds(n, burstRound) }

func spawnRounds(n, round int) time.Duration {
	var wg sync.WaitGroup
	for left := n; left > 0; {
		k := left
		if k > round {
			k = round
		}
		left -= k
		wg.Add(k)
		for i := 0; i < k; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
	return -1
}

// share is worker i's part of n ops split over parts workers (the first
// n%parts get one more).
func share(n, parts, i int) int {
	if i < n%parts {
		return n/parts + 1
	}
	return n / parts
}

func spawnExitParallel(n int) time.Duration {
	procs := runtime.GOMAXPROCS(0)
	var workers sync.WaitGroup
	workers.Add(procs)
	for p := 0; p < procs; p++ {
		per := share(n, procs, p)
		go func() {
			defer workers.Done()
			spawnExit(per)
		}()
	}
	workers.Wait()
	return -1
}

// --- Gosched --------------------------------------------------------------

// gosched: two goroutines on one P, each calling Gosched n/2 times.
func gosched(n int) time.Duration {
	half := (n + 1) / 2
	var wg sync.WaitGroup
	wg.Add(2)
	for g := 0; g < 2; g++ {
		go func() {
			for i := 0; i < half; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return -1
}

// --- channels -------------------------------------------------------------

// pingPong: n one-way messages over two unbuffered channels between two
// goroutines (n/2 round trips).
func pingPong(n int) time.Duration {
	trips := (n + 1) / 2
	ping, pong := make(chan int), make(chan int)
	done := make(chan struct{})
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(done)
	}()
	v := 0
	for i := 0; i < trips; i++ {
		ping <- v
		v = <-pong
	}
	close(ping)
	<-done
	if v != trips {
		panic("ping-pong lost a message")
	}
	return -1
}

// chanSync: two goroutines share one unbuffered channel and take turns at
// being the sender: at step i goroutine (i%2) sends and the other receives.
// One op is one hand-off.
func chanSync(n int) time.Duration {
	c := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	for g := 0; g < 2; g++ {
		g := g
		go func() {
			for i := 0; i < n; i++ {
				if i%2 == g {
					c <- struct{}{}
				} else {
					<-c
				}
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return -1
}

// prodCons: GOMAXPROCS producers and as many consumers move n items through
// one channel of capacity size. One op is one item.
func prodCons(size int) func(n int) time.Duration {
	return func(n int) time.Duration {
		procs := runtime.GOMAXPROCS(0)
		c := make(chan int, size)
		var left int64 = int64(n)
		var prod, cons sync.WaitGroup
		var got int64
		prod.Add(procs)
		cons.Add(procs)
		for p := 0; p < procs; p++ {
			go func() {
				defer prod.Done()
				// Claim items in chunks to keep the shared counter cold.
				for {
					hi := atomic.AddInt64(&left, -64)
					k := int64(64)
					if hi < 0 {
						k += hi
					}
					for ; k > 0; k-- {
						c <- 1
					}
					if hi <= 0 {
						return
					}
				}
			}()
			go func() {
				defer cons.Done()
				var s int64
				for v := range c {
					s += int64(v)
				}
				atomic.AddInt64(&got, s)
			}()
		}
		prod.Wait()
		close(c)
		cons.Wait()
		if got != int64(n) {
			panic(fmt.Sprintf("prodcons: %d items of %d", got, n))
		}
		return -1
	}
}

// wakeLatency: the time from an unbuffered send to a parked receiver until
// that receiver runs on another thread. The sender keeps its P busy after
// the send, so the receiver (readied into the sender's runnext) must be
// taken by another M: wakep wakes an idle M, which steals it.
func wakeLatency(n int) time.Duration {
	c := make(chan int64)
	var woke int64 // time the receiver ran, 0 while waiting
	var recvDone = make(chan struct{})
	go func() {
		for range c {
			atomic.StoreInt64(&woke, nanotime())
		}
		close(recvDone)
	}()
	var total int64
	for i := 0; i < n; i++ {
		// Give the receiver time to park and its M time to go idle.
		t := nanotime()
		for nanotime()-t < 200_000 {
		}
		atomic.StoreInt64(&woke, 0)
		t0 := nanotime()
		c <- t0
		for atomic.LoadInt64(&woke) == 0 {
			// Busy: not a voluntary yield, so this P does not run the receiver.
		}
		total += atomic.LoadInt64(&woke) - t0
	}
	close(c)
	<-recvDone
	return time.Duration(total)
}

// --- fork-join ------------------------------------------------------------

const forkN = 1 << 22
const forkLeaf = 4096

// sum adds the numbers lo..hi-1: below forkLeaf in a loop, otherwise it
// spawns a goroutine for the lower half, does the upper half itself and
// joins with a WaitGroup.
func sum(lo, hi uint64) uint64 {
	if hi-lo <= forkLeaf {
		var s uint64
		for i := lo; i < hi; i++ {
			s += i
		}
		return s
	}
	mid := lo + (hi-lo)/2
	var left uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		left = sum(lo, mid)
		wg.Done()
	}()
	right := sum(mid, hi)
	wg.Wait()
	return left + right
}

func forkJoin(n int) time.Duration {
	for i := 0; i < n; i++ {
		if s := sum(0, forkN); s != forkN*(forkN-1)/2 {
			panic("fork-join: wrong sum")
		}
	}
	return -1
}

// --- workloads (the kernel's benchkernel/workload.rs) ----------------------

// perP is how many goroutines per P the contended workloads run.
const perP = 4

// mutexContended: perP*GOMAXPROCS goroutines lock one sync.Mutex, bump a
// shared counter and unlock, n times in all. One op is one lock/unlock.
func mutexContended(n int) time.Duration {
	g := perP * runtime.GOMAXPROCS(0)
	var mu sync.Mutex
	var count int
	var wg sync.WaitGroup
	wg.Add(g)
	for i := 0; i < g; i++ {
		mine := share(n, g, i)
		go func() {
			for k := 0; k < mine; k++ {
				mu.Lock()
				count++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	if count != n {
		panic("mutex_contended lost increments")
	}
	return -1
}

// work is the kernel's workload::work: a little computation per job.
//
//go:noinline
func work(x uint64) uint64 {
	h := x | 1
	for i := 0; i < 32; i++ {
		h ^= h << 13
		h ^= h >> 7
		h ^= h << 17
	}
	return h
}

// workerPool: one feeder sends n jobs into a buffered channel,
// perP*GOMAXPROCS workers do work on each and send the result into a second
// buffered channel, which the caller drains. One op is one job.
func workerPool(n int) time.Duration {
	const capacity = 128
	workers := perP * runtime.GOMAXPROCS(0)
	jobs := make(chan uint64, capacity)
	results := make(chan uint64, capacity)
	t0 := time.Now()
	go func() {
		for j := 0; j < n; j++ {
			jobs <- uint64(j)
		}
		close(jobs)
	}()
	for w := 0; w < workers; w++ {
		go func() {
			for j := range jobs {
				results <- work(j)
			}
		}()
	}
	var sum uint64
	for j := 0; j < n; j++ {
		sum += <-results
	}
	d := time.Since(t0) // the check below is not timed
	var want uint64
	for j := 0; j < n; j++ {
		want += work(uint64(j))
	}
	if sum != want {
		panic("worker_pool lost or changed a result")
	}
	return d
}

// tree: a node at depth > 0 spawns two children and joins them with a
// WaitGroup; it returns how many goroutines its subtree ran.
func tree(depth int) int {
	if depth == 0 {
		return 1
	}
	var wg sync.WaitGroup
	var counts [2]int
	wg.Add(2)
	for side := 0; side < 2; side++ {
		side := side
		go func() {
			counts[side] = tree(depth - 1)
			wg.Done()
		}()
	}
	wg.Wait()
	return 1 + counts[0] + counts[1]
}

const treeDepth = 11

// spawnTree: trees of depth 11 (4095 goroutines), enough of them for n
// goroutines. One op is one goroutine.
func spawnTree(n int) time.Duration {
	nodes := 1<<(treeDepth+1) - 1
	trees := (n + nodes - 1) / nodes
	t0 := time.Now()
	for t := 0; t < trees; t++ {
		done := make(chan int, 1)
		go func() { done <- tree(treeDepth) }()
		if <-done != nodes {
			panic("spawn_tree lost a goroutine")
		}
	}
	// Account per goroutine actually run, not per op asked for.
	return time.Duration(float64(time.Since(t0)) * float64(n) / float64(trees*nodes))
}

// tokenRing: 503 goroutines in a ring of unbuffered channels pass a counter
// of n; each hop decrements it, and whoever sees zero reports. One op is
// one hop.
func tokenRing(n int) time.Duration {
	const ring = 503
	chans := make([]chan int, ring)
	for i := range chans {
		chans[i] = make(chan int)
	}
	done := make(chan int, 1)
	for i := 0; i < ring; i++ {
		i, inbox, next := i, chans[i], chans[(i+1)%ring]
		go func() {
			for t := range inbox {
				if t == 0 {
					done <- i
					return
				}
				next <- t - 1
			}
		}()
	}
	chans[0] <- n
	if last := <-done; last != n%ring {
		panic("token_ring: the token took a wrong path")
	}
	for _, c := range chans {
		close(c)
	}
	return -1
}

// --- main -------------------------------------------------------------------

func selected(name string) bool {
	if *only == "" {
		return true
	}
	for _, s := range strings.Split(*only, ",") {
		if exact := strings.TrimPrefix(s, "="); exact != s {
			if name == exact {
				return true
			}
		} else if s != "" && strings.Contains(name, s) {
			return true
		}
	}
	return false
}

func main() {
	flag.Parse()
	if *probe {
		fmt.Println("ok")
		return
	}
	time.Sleep(*wait)
	if *insn {
		insnTable()
		return
	}
	ncpu := runtime.NumCPU()
	procs := runtime.GOMAXPROCS(0)
	fmt.Fprintf(os.Stderr, "# %s %s/%s NumCPU=%d GOMAXPROCS=%d budget=%v\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, ncpu, procs, *budget)

	wakeProcs := ncpu
	if wakeProcs < 2 {
		wakeProcs = 2
	}
	type bench struct {
		name  string
		procs int // 0: leave GOMAXPROCS as it is
		f     func(n int) time.Duration
	}
	benches := []bench{
		{"spawn_exit", 0, spawnExit},
		{"spawn_exit_p1", 1, spawnExit},
		{"spawn_exit_parallel", 0, spawnExitParallel},
		{"spawn_exit_burst", 0, spawnBurst},
		{"gosched", 1, gosched},
		{"chan_pingpong", 1, pingPong},
		{fmt.Sprintf("chan_pingpong_p%d", ncpu), ncpu, pingPong},
		{"wake_latency", wakeProcs, wakeLatency},
		{"chan_sync", 0, chanSync},
		{"chan_prodcons0", 0, prodCons(0)},
		{"chan_prodcons10", 0, prodCons(10)},
		{"chan_prodcons100", 0, prodCons(100)},
		{"mutex_contended", 0, mutexContended},
		{"worker_pool", 0, workerPool},
		{"spawn_tree", 0, spawnTree},
		{"token_ring", 0, tokenRing},
	}
	ran := 0
	for _, b := range benches {
		if !selected(b.name) {
			continue
		}
		var v float64
		p := b.procs
		if p == 0 {
			p = procs
		}
		withProcs(p, func() { v = measure(b.f) })
		report(b.name, v, "ns/op")
		ran++
	}
	if selected("forkjoin") {
		// Interleave the P counts and keep each one's best run, so that a
		// burst of host load does not skew one P count only.
		best := make([]float64, ncpu+1)
		size := make([]int, ncpu+1)
		rounds := reps
		if *ops > 0 {
			rounds = 1 // -n: one run of that size per P count
		}
		for r := 0; r < rounds; r++ {
			for p := 1; p <= ncpu; p++ {
				withProcs(p, func() {
					if *ops > 0 {
						best[p], _ = runOnce(forkJoin, *ops)
					} else if r == 0 {
						best[p], size[p] = calibrate(*budget/reps, forkJoin)
					} else if v, _ := runOnce(forkJoin, size[p]); v < best[p] {
						best[p] = v
					}
				})
			}
		}
		for p := 1; p <= ncpu; p++ {
			report(fmt.Sprintf("forkjoin_p%d", p), best[p], "ns/op")
			report(fmt.Sprintf("forkjoin_speedup_p%d", p), best[1]/best[p], "x")
			ran++
		}
	}
	fmt.Fprintf(os.Stderr, "# done: %d benchmarks in %.1fs\n", ran, time.Since(start).Seconds())
}
