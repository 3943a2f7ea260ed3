// Command loadgen is upcase's own load generator for the benchmark harness.
//
// It is written in Go rather than TypeScript so that, pinned to one core
// beside a server pinned to another, the client is not the bottleneck: Go
// drives thousands of connections from one core with little overhead per
// message. Every byte that comes back is checked against the ASCII
// uppercase of what was sent, and the process reports its own CPU use, so a
// run where the load generator saturated its core shows up as such.
//
// Modes:
//
//	bulk      each connection streams data one way and reads the reply back
//	pingpong  each connection sends one message and waits for its reply;
//	          with -pause, each waits that long before its next message
//	idle      open connections, prove each works, wait for stdin EOF, prove again
//
// and the other hold modes in hold.go, which bring connections into a state
// (idle after bulk, stuck, cut off) for the harness to measure the server in.
//
// The result is one JSON object on stdout (the hold modes print a "ready"
// line first); diagnostics go to stderr. The exit code is 1 if any connection
// failed or any byte was wrong, 2 for bad flags.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// The payload repeats with this period. It is much larger than a write
	// or a read, so that a stream offset error (lost, duplicated or
	// reordered chunks) almost never lines up with identical data.
	patternPeriod = 1 << 20
	readBufSize   = 64 << 10
	idleMsgSize   = 16
	// Ping-pong messages up to this size fit in the socket buffers, so one
	// goroutine can write the whole message and then read the reply.
	inlineWriteMax = 64 << 10
	// All I/O after the measurement ends must finish within this grace.
	grace = 10 * time.Second
	// Deadlines leave the last part of the grace for clean-up and output.
	ioGrace = grace - 2*time.Second
	// Bulk gets longer: when the window ends, the socket buffers of 100
	// connections can hold 2 GB (up to 20 MB each on loopback), which a
	// server echoing 100 MB/s needs 20 s to send back.
	bulkGrace = 40 * time.Second
	// Keeps stderr readable when every connection fails the same way.
	maxLoggedErrors = 10
)

type config struct {
	addr               string
	mode               string
	conns              int
	size               int
	warmup             time.Duration
	duration           time.Duration
	sources            []net.IP
	connectTimeout     time.Duration
	connectConcurrency int
	text               string
	stall              time.Duration
	// Ping-pong: how long each connection waits after a reply before it
	// sends again; 0 sends at once, which saturates the server.
	pause time.Duration
	// Print {"window":"start"} and {"window":"end"} lines on stdout as the
	// measurement window opens and closes, for the harness to sample the
	// server's CPU time at the same moments.
	marks bool
	// Socket buffer sizes set before connecting, so that they bound the
	// window from the start; 0 leaves the kernel's defaults.
	socketBuffer int
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		os.Exit(2)
	}
	var result any
	var errs *errorLog
	switch cfg.mode {
	case "bulk":
		result, errs = runBulk(cfg)
	case "pingpong":
		result, errs = runPingpong(cfg)
	case "idle", "bulk-idle", "no-read", "mid-stream":
		result, errs = runHold(cfg)
	}
	emit(result)
	if errs.total() > 0 {
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	addr := fs.String("addr", "", "server `host:port` (required)")
	mode := fs.String("mode", "bulk", "bulk, pingpong, or a hold mode: idle, bulk-idle, no-read, mid-stream")
	conns := fs.Int("conns", 1, "number of connections")
	size := fs.Int("size", 0, "bulk: bytes per write (default 65536); pingpong: message size (default 64);\nbulk-idle, mid-stream: bytes per connection (default 262144); no-read: bytes per write (default 16384)")
	duration := fs.Float64("duration", 5, "measurement `seconds`")
	warmup := fs.Float64("warmup", 1, "warm-up `seconds`, not counted")
	sources := fs.String("sources", "", "comma-separated local source IPs, used round-robin")
	connectTimeout := fs.Float64("connect-timeout", 10, "`seconds` allowed for opening all connections")
	concurrency := fs.Int("concurrency-connect", 200, "maximum dials in flight")
	text := fs.String("text", "ascii", "hold modes: ascii, or iota (U+0390, which grows 2 bytes to 6 in --unicode)")
	stall := fs.Float64("stall", 1, "no-read: `seconds` without progress that mean the server stopped reading")
	pause := fs.Float64("pause", 0, "pingpong: `seconds` each connection waits after a reply before its next message")
	marks := fs.Bool("marks", false, "bulk, pingpong: print {\"window\":\"start\"} and {\"window\":\"end\"} lines as the window opens and closes")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := config{
		addr:               *addr,
		mode:               *mode,
		conns:              *conns,
		size:               *size,
		warmup:             seconds(*warmup),
		duration:           seconds(*duration),
		connectTimeout:     seconds(*connectTimeout),
		connectConcurrency: *concurrency,
		text:               *text,
		stall:              seconds(*stall),
		pause:              seconds(*pause),
		marks:              *marks,
	}
	if cfg.addr == "" {
		return cfg, errors.New("-addr is required")
	}
	if _, _, err := net.SplitHostPort(cfg.addr); err != nil {
		return cfg, fmt.Errorf("cannot parse -addr %q: %v", cfg.addr, err)
	}
	switch cfg.mode {
	case "bulk", "pingpong", "idle", "bulk-idle", "no-read", "mid-stream":
	default:
		return cfg, fmt.Errorf("-mode %q is not bulk, pingpong, idle, bulk-idle, no-read or mid-stream", cfg.mode)
	}
	if cfg.text != "ascii" && cfg.text != "iota" {
		return cfg, fmt.Errorf("-text %q is not ascii or iota", cfg.text)
	}
	if cfg.text != "ascii" && (cfg.mode == "bulk" || cfg.mode == "pingpong") {
		return cfg, fmt.Errorf("-text %q is for the hold modes only", cfg.text)
	}
	if cfg.size == 0 {
		cfg.size = map[string]int{
			"bulk": 65536, "pingpong": 64, "bulk-idle": 256 << 10,
			"no-read": 16 << 10, "mid-stream": 256 << 10,
		}[cfg.mode]
	}
	if cfg.mode == "idle" {
		cfg.size = idleMsgSize
	}
	if cfg.mode == "no-read" && cfg.size > holdChunk {
		return cfg, fmt.Errorf("-size %d is more than %d for no-read", cfg.size, holdChunk)
	}
	switch {
	case cfg.conns < 1:
		return cfg, fmt.Errorf("-conns %d is not at least 1", cfg.conns)
	case cfg.size < 1:
		return cfg, fmt.Errorf("-size %d is not at least 1", cfg.size)
	case *duration <= 0:
		return cfg, fmt.Errorf("-duration %v is not above 0", *duration)
	case *warmup < 0:
		return cfg, fmt.Errorf("-warmup %v is negative", *warmup)
	case *pause < 0:
		return cfg, fmt.Errorf("-pause %v is negative", *pause)
	case *pause > 0 && cfg.mode != "pingpong":
		return cfg, fmt.Errorf("-pause is for -mode pingpong only, not %q", cfg.mode)
	case *stall <= 0:
		return cfg, fmt.Errorf("-stall %v is not above 0", *stall)
	case *connectTimeout <= 0:
		return cfg, fmt.Errorf("-connect-timeout %v is not above 0", *connectTimeout)
	case cfg.connectConcurrency < 1:
		return cfg, fmt.Errorf("-concurrency-connect %d is not at least 1", cfg.connectConcurrency)
	}
	if *sources != "" {
		for _, s := range strings.Split(*sources, ",") {
			ip := net.ParseIP(strings.TrimSpace(s))
			if ip == nil {
				return cfg, fmt.Errorf("cannot parse -sources: %q is not an IP address", s)
			}
			cfg.sources = append(cfg.sources, ip)
		}
	}
	return cfg, nil
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second))
}

// ---------------------------------------------------------------------------
// Payload

// pattern holds the bytes to send and the reply expected for them. Both are
// one period longer than needed by `extra` bytes, so that any send or read
// starting inside the period is one contiguous slice: no wrap-around logic
// and no copying on the hot path.
type pattern struct {
	sent []byte
	want []byte
}

func newPattern(extra int) *pattern {
	n := patternPeriod + extra
	sent := make([]byte, n)
	// A fixed seed, so a failure repeats byte for byte. Only printable
	// ASCII, with lower and upper case letters, so that the server's ASCII
	// and Unicode modes must give the same reply.
	x := uint64(0x9e3779b97f4a7c15)
	for i := 0; i < patternPeriod; i++ {
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		sent[i] = byte(0x20 + ((x*0x2545f4914f6cdd1d)>>32)%95)
	}
	for i := patternPeriod; i < n; i++ {
		sent[i] = sent[i-patternPeriod]
	}
	want := make([]byte, n)
	for i, b := range sent {
		if b >= 'a' && b <= 'z' {
			b -= 'a' - 'A'
		}
		want[i] = b
	}
	return &pattern{sent: sent, want: want}
}

// startOffset spreads connections over the pattern so that no two send the
// same bytes at the same time.
func startOffset(id int) int {
	return (id * 7919 * 131) % patternPeriod
}

// describeMismatch names the first wrong byte of a reply.
func describeMismatch(got, want, sent []byte, streamOffset int64) string {
	i := 0
	for i < len(got) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("byte mismatch at stream offset %d: sent %s, expected %s, got %s",
		streamOffset+int64(i), showByte(sent[i]), showByte(want[i]), showByte(got[i]))
}

func showByte(b byte) string {
	if b >= 0x20 && b <= 0x7e {
		return fmt.Sprintf("0x%02x %q", b, rune(b))
	}
	return fmt.Sprintf("0x%02x", b)
}

// ---------------------------------------------------------------------------
// Errors

// errorLog counts failures and keeps the first one for the report.
type errorLog struct {
	mu    sync.Mutex
	count int
	first string
}

func (e *errorLog) add(msg string) {
	e.mu.Lock()
	e.count++
	n := e.count
	if e.first == "" {
		e.first = msg
	}
	e.mu.Unlock()
	if n <= maxLoggedErrors {
		fmt.Fprintf(os.Stderr, "loadgen: %s\n", msg)
	} else if n == maxLoggedErrors+1 {
		fmt.Fprintln(os.Stderr, "loadgen: more errors follow; only the count is reported")
	}
}

func (e *errorLog) total() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.count
}

func (e *errorLog) firstError() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.first
}

// conn is one client connection. It fails at most once: the first failure
// is counted and closes the socket, which unblocks its other goroutine,
// whose own error is then only a consequence and is not counted again.
type conn struct {
	id     int
	c      *net.TCPConn
	errs   *errorLog
	failed atomic.Bool
}

func (k *conn) fail(format string, args ...any) {
	if k.failed.Swap(true) {
		return
	}
	k.errs.add(fmt.Sprintf("conn %d (%s): ", k.id, k.c.LocalAddr()) + fmt.Sprintf(format, args...))
	k.c.Close()
}

// closeCleanly half-closes, expects the server to finish with EOF and
// nothing more, and closes. An upcase server closes once the client has
// half-closed and every reply is out.
func (k *conn) closeCleanly(deadline time.Time) {
	if k.failed.Load() {
		return
	}
	if err := k.c.SetDeadline(deadline); err != nil {
		k.fail("set deadline: %v", err)
		return
	}
	if err := k.c.CloseWrite(); err != nil {
		k.fail("half-close: %v", err)
		return
	}
	var one [1]byte
	n, err := k.c.Read(one[:])
	switch {
	case n > 0:
		k.fail("unexpected byte %s after the last reply", showByte(one[0]))
	case err != io.EOF:
		k.fail("waiting for the server to close after our half-close: %v", err)
	default:
		k.c.Close()
	}
}

// ---------------------------------------------------------------------------
// Connecting

// dialAll opens cfg.conns connections, at most cfg.connectConcurrency at a
// time, all within cfg.connectTimeout. Each successful connection is passed
// to `ready` (if any) while it still holds its dial slot; `ready` returns
// false if it failed the connection. Failed dials are counted, and the run
// goes on with the connections that did open.
func dialAll(cfg config, errs *errorLog, ready func(*conn) bool) []*conn {
	deadline := time.Now().Add(cfg.connectTimeout)
	slots := make(chan struct{}, cfg.connectConcurrency)
	opened := make([]*conn, cfg.conns)
	var wg sync.WaitGroup
	for i := 0; i < cfg.conns; i++ {
		slots <- struct{}{}
		wg.Add(1)
		go func(id int) {
			defer func() { <-slots; wg.Done() }()
			d := net.Dialer{Deadline: deadline}
			if cfg.socketBuffer > 0 {
				d.Control = setSocketBuffers(cfg.socketBuffer)
			}
			if len(cfg.sources) > 0 {
				d.LocalAddr = &net.TCPAddr{IP: cfg.sources[id%len(cfg.sources)]}
			}
			c, err := d.Dial("tcp", cfg.addr)
			if err != nil {
				errs.add(fmt.Sprintf("conn %d: dial %s: %v", id, cfg.addr, err))
				return
			}
			k := &conn{id: id, c: c.(*net.TCPConn), errs: errs}
			if ready == nil || ready(k) {
				opened[id] = k
			}
		}(i)
	}
	wg.Wait()
	var live []*conn
	for _, k := range opened {
		if k != nil {
			live = append(live, k)
		}
	}
	return live
}

// ---------------------------------------------------------------------------
// Measurement

type cpuSample struct {
	at   time.Time
	user time.Duration
	sys  time.Duration
}

func sampleCPU() cpuSample {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: getrusage: %v\n", err)
	}
	return cpuSample{
		at:   time.Now(),
		user: time.Duration(ru.Utime.Nano()),
		sys:  time.Duration(ru.Stime.Nano()),
	}
}

// common holds the fields every mode reports.
type common struct {
	Mode           string  `json:"mode"`
	Conns          int     `json:"conns"`
	Connected      int     `json:"connected"`
	Size           int     `json:"size"`
	Seconds        float64 `json:"seconds"`
	Errors         int     `json:"errors"`
	FirstError     string  `json:"firstError"`
	CPUPercent     float64 `json:"cpuPercent"`
	CPUUserS       float64 `json:"cpuUserS"`
	CPUSysS        float64 `json:"cpuSysS"`
	GOMAXPROCS     int     `json:"gomaxprocs"`
	ConnectSeconds float64 `json:"connectSeconds"`
}

func newCommon(cfg config, connected int, connect time.Duration, from, to cpuSample, errs *errorLog) common {
	wall := to.at.Sub(from.at).Seconds()
	user := (to.user - from.user).Seconds()
	sys := (to.sys - from.sys).Seconds()
	pct := 0.0
	if wall > 0 {
		pct = (user + sys) / wall * 100
	}
	return common{
		Mode:           cfg.mode,
		Conns:          cfg.conns,
		Connected:      connected,
		Size:           cfg.size,
		Seconds:        round(wall, 3),
		Errors:         errs.total(),
		FirstError:     errs.firstError(),
		CPUPercent:     round(pct, 1),
		CPUUserS:       round(user, 3),
		CPUSysS:        round(sys, 3),
		GOMAXPROCS:     runtime.GOMAXPROCS(0),
		ConnectSeconds: round(connect.Seconds(), 3),
	}
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

var output struct {
	sync.Mutex
	done bool
}

// printJSON writes v as one JSON line on stdout, unbuffered, so that the
// harness sees it at once.
func printJSON(v any) {
	var line bytes.Buffer
	enc := json.NewEncoder(&line)
	// Error messages hold "->" between addresses; keep them readable.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		os.Exit(1)
	}
	os.Stdout.Write(line.Bytes())
}

// emit prints the final JSON object, once: the watchdog and the normal end
// may race, and the harness expects exactly one.
func emit(v any) {
	output.Lock()
	defer output.Unlock()
	if !output.done {
		printJSON(v)
		output.done = true
	}
}

// markWindow prints a window edge for the harness, unless the final
// report is out already.
func markWindow(cfg config, edge string) {
	if !cfg.marks {
		return
	}
	output.Lock()
	defer output.Unlock()
	if !output.done {
		printJSON(map[string]string{"window": edge})
	}
}

// startWatchdog ends the process with a failure report at `at`. Every
// socket has a deadline well before it, so this only fires on a bug; it
// keeps the promise that a run always ends in bounded time.
func startWatchdog(cfg config, at time.Time, errs *errorLog) {
	time.AfterFunc(time.Until(at), func() {
		errs.add("watchdog: the run did not finish in time")
		emit(map[string]any{
			"mode":       cfg.mode,
			"conns":      cfg.conns,
			"errors":     errs.total(),
			"firstError": errs.firstError(),
		})
		os.Exit(1)
	})
}

func sleepUntil(t time.Time) {
	time.Sleep(time.Until(t))
}

// ---------------------------------------------------------------------------
// Bulk

type bulkResult struct {
	common
	MBPerSec      float64 `json:"mbPerSec"`
	BytesInWindow int64   `json:"bytesInWindow"`
	BytesSent     int64   `json:"bytesSent"`
	BytesVerified int64   `json:"bytesVerified"`
	MinConnMBps   float64 `json:"minConnMBps"`
	MaxConnMBps   float64 `json:"maxConnMBps"`
}

type bulkConn struct {
	*conn
	start int
	// recv is read by the main goroutine at the window's edges.
	recv atomic.Int64
	// sent is final once wrote is closed.
	sent  int64
	wrote chan struct{}
}

func runBulk(cfg config) (any, *errorLog) {
	errs := &errorLog{}
	pat := newPattern(max(cfg.size, readBufSize))
	t0 := time.Now()
	opened := dialAll(cfg, errs, nil)
	connectTime := time.Since(t0)

	begin := time.Now()
	warmEnd := begin.Add(cfg.warmup)
	end := warmEnd.Add(cfg.duration)
	hard := end.Add(bulkGrace - 2*time.Second)
	startWatchdog(cfg, end.Add(bulkGrace-500*time.Millisecond), errs)

	var stopping atomic.Bool
	var wg sync.WaitGroup
	conns := make([]*bulkConn, len(opened))
	for i, k := range opened {
		b := &bulkConn{conn: k, start: startOffset(k.id), wrote: make(chan struct{})}
		conns[i] = b
		// One absolute deadline bounds every read and write, so a server
		// that stops responding fails the run instead of hanging it.
		if err := k.c.SetDeadline(hard); err != nil {
			k.fail("set deadline: %v", err)
		}
		wg.Add(2)
		go func() { defer wg.Done(); b.write(pat, cfg.size, &stopping) }()
		go func() { defer wg.Done(); b.read(pat) }()
	}

	sleepUntil(warmEnd)
	cpu0 := sampleCPU()
	recv0 := make([]int64, len(conns))
	for i, b := range conns {
		recv0[i] = b.recv.Load()
	}
	markWindow(cfg, "start")
	sleepUntil(end)
	recv1 := make([]int64, len(conns))
	for i, b := range conns {
		recv1[i] = b.recv.Load()
	}
	cpu1 := sampleCPU()
	markWindow(cfg, "end")

	stopping.Store(true)
	for _, b := range conns {
		// A writer blocked on a full socket buffer would otherwise send one
		// more chunk; a deadline in the past ends it at once, and Write
		// still reports the bytes that went out, so the accounting holds.
		b.c.SetWriteDeadline(time.Now())
	}
	wg.Wait()

	window := cpu1.at.Sub(cpu0.at).Seconds()
	res := bulkResult{MinConnMBps: math.Inf(1)}
	for i, b := range conns {
		delta := recv1[i] - recv0[i]
		res.BytesInWindow += delta
		res.BytesSent += b.sent
		res.BytesVerified += b.recv.Load()
		rate := float64(delta) / 1e6 / window
		res.MinConnMBps = math.Min(res.MinConnMBps, rate)
		res.MaxConnMBps = math.Max(res.MaxConnMBps, rate)
	}
	if len(conns) == 0 {
		res.MinConnMBps = 0
	}
	res.MinConnMBps = round(res.MinConnMBps, 3)
	res.MaxConnMBps = round(res.MaxConnMBps, 3)
	res.MBPerSec = round(float64(res.BytesInWindow)/1e6/window, 3)
	res.common = newCommon(cfg, len(conns), connectTime, cpu0, cpu1, errs)
	fmt.Fprintf(os.Stderr, "loadgen: bulk %d conns: %.1f MB/s, cpu %.0f%%, errors %d\n",
		len(conns), res.MBPerSec, res.CPUPercent, res.Errors)
	return res, errs
}

func (b *bulkConn) write(pat *pattern, size int, stopping *atomic.Bool) {
	defer close(b.wrote)
	off := b.start
	for !stopping.Load() {
		// Writing at the running stream offset: the stream is the pattern
		// repeated, not one chunk repeated.
		n, err := b.c.Write(pat.sent[off : off+size])
		b.sent += int64(n)
		off = (off + n) % patternPeriod
		if err != nil {
			if stopping.Load() && isTimeout(err) {
				break
			}
			b.fail("write after %d bytes: %v", b.sent, err)
			return
		}
	}
	if b.failed.Load() {
		return
	}
	if err := b.c.CloseWrite(); err != nil {
		b.fail("half-close after %d bytes: %v", b.sent, err)
	}
}

func (b *bulkConn) read(pat *pattern) {
	buf := make([]byte, readBufSize)
	off := b.start
	var recv int64
	for {
		n, err := b.c.Read(buf)
		if n > 0 {
			if want := pat.want[off : off+n]; !bytes.Equal(buf[:n], want) {
				b.fail("%s", describeMismatch(buf[:n], want, pat.sent[off:off+n], recv))
				return
			}
			recv += int64(n)
			b.recv.Store(recv)
			off = (off + n) % patternPeriod
		}
		if err == nil {
			continue
		}
		if b.failed.Load() {
			return
		}
		if err != io.EOF {
			b.fail("read after %d bytes: %v", recv, err)
			return
		}
		break
	}
	// EOF: the server closes only after our half-close, which comes after
	// the writer has finished; an earlier EOF means it gave up on us.
	select {
	case <-b.wrote:
	default:
		b.fail("server closed the connection after %d bytes, while we were still sending", recv)
		return
	}
	if b.failed.Load() {
		return
	}
	if recv != b.sent {
		b.fail("received %d bytes in all but sent %d", recv, b.sent)
		return
	}
	b.c.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func max(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// ---------------------------------------------------------------------------
// Ping-pong

type pingpongResult struct {
	common
	Msgs               int     `json:"msgs"`
	MsgsPerSec         float64 `json:"msgsPerSec"`
	P50Us              float64 `json:"p50Us"`
	P99Us              float64 `json:"p99Us"`
	P999Us             float64 `json:"p999Us"`
	MaxUs              float64 `json:"maxUs"`
	MinConnMsgs        int     `json:"minConnMsgs"`
	MaxConnMsgs        int     `json:"maxConnMsgs"`
	WindowSeconds      int     `json:"windowSeconds"`
	Windows            int     `json:"windows"`
	MinConnWindowMsgs  int     `json:"minConnWindowMsgs"`
	StarvedConnWindows int     `json:"starvedConnWindows"`
	PauseMs            float64 `json:"pauseMs"`
}

type pingpongConn struct {
	*conn
	// Latencies in ns of the messages counted, and how many finished in
	// each full one-second window: owned by the connection's goroutine
	// until the run ends.
	latencies []int64
	windows   []int
}

func runPingpong(cfg config) (any, *errorLog) {
	errs := &errorLog{}
	pat := newPattern(cfg.size)
	t0 := time.Now()
	opened := dialAll(cfg, errs, nil)
	connectTime := time.Since(t0)

	begin := time.Now()
	warmEnd := begin.Add(cfg.warmup)
	end := warmEnd.Add(cfg.duration)
	hard := end.Add(ioGrace)
	startWatchdog(cfg, end.Add(grace-500*time.Millisecond), errs)
	// Only whole seconds count for fairness: a partial last window would
	// look like starvation.
	fullWindows := int(cfg.duration / time.Second)

	var wg sync.WaitGroup
	conns := make([]*pingpongConn, len(opened))
	for i, k := range opened {
		p := &pingpongConn{conn: k, windows: make([]int, fullWindows)}
		conns[i] = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			tl := timeline{warmEnd: warmEnd, end: end, hard: hard, pause: cfg.pause}
			// Paced connections start spread over one pause, so that they
			// do not all send in the same instant for the whole run.
			tl.first = begin.Add(cfg.pause * time.Duration(p.id) / time.Duration(cfg.conns))
			p.run(pat, cfg.size, tl)
		}()
	}
	sleepUntil(warmEnd)
	cpu0 := sampleCPU()
	markWindow(cfg, "start")
	sleepUntil(end)
	cpu1 := sampleCPU()
	markWindow(cfg, "end")
	wg.Wait()

	res := pingpongResult{WindowSeconds: 1, Windows: fullWindows}
	var all []int64
	for i, p := range conns {
		n := len(p.latencies)
		all = append(all, p.latencies...)
		if i == 0 || n < res.MinConnMsgs {
			res.MinConnMsgs = n
		}
		if n > res.MaxConnMsgs {
			res.MaxConnMsgs = n
		}
		for w, m := range p.windows {
			if (i == 0 && w == 0) || m < res.MinConnWindowMsgs {
				res.MinConnWindowMsgs = m
			}
			if m == 0 {
				res.StarvedConnWindows++
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res.Msgs = len(all)
	res.MsgsPerSec = round(float64(len(all))/cfg.duration.Seconds(), 1)
	res.P50Us = percentileUs(all, 0.50)
	res.P99Us = percentileUs(all, 0.99)
	res.P999Us = percentileUs(all, 0.999)
	res.MaxUs = percentileUs(all, 1)
	res.common = newCommon(cfg, len(conns), connectTime, cpu0, cpu1, errs)
	// The message rate is over the nominal window, the one the messages
	// were selected by; the CPU window is measured and may differ by the
	// scheduler's wake-up delay.
	res.Seconds = round(cfg.duration.Seconds(), 3)
	res.PauseMs = round(cfg.pause.Seconds()*1000, 3)
	fmt.Fprintf(os.Stderr, "loadgen: pingpong %d conns: %.0f msgs/s, p50 %.0f us, p99 %.0f us, cpu %.0f%%, errors %d\n",
		len(conns), res.MsgsPerSec, res.P50Us, res.P99Us, res.CPUPercent, res.Errors)
	return res, errs
}

// percentileUs is the nearest-rank percentile of sorted samples, in µs.
func percentileUs(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return round(float64(sorted[i])/1e3, 1)
}

type timeline struct {
	warmEnd, end, hard time.Time
	// Paced runs: when the first message goes, and the wait after each reply.
	first time.Time
	pause time.Duration
}

func (p *pingpongConn) run(pat *pattern, size int, tl timeline) {
	if err := p.c.SetDeadline(tl.hard); err != nil {
		p.fail("set deadline: %v", err)
		return
	}
	buf := make([]byte, size)
	off := startOffset(p.id)
	var sent int64
	sleepUntil(tl.first)
	for {
		t := time.Now()
		if !t.Before(tl.end) {
			break
		}
		if !p.roundTrip(pat.sent[off:off+size], buf, sent) {
			return
		}
		d := time.Since(t)
		if want := pat.want[off : off+size]; !bytes.Equal(buf, want) {
			p.fail("%s", describeMismatch(buf, want, pat.sent[off:off+size], sent))
			return
		}
		if done := t.Add(d); !t.Before(tl.warmEnd) && !done.After(tl.end) {
			p.latencies = append(p.latencies, int64(d))
			if w := int(done.Sub(tl.warmEnd) / time.Second); w < len(p.windows) {
				p.windows[w]++
			}
		}
		sent += int64(size)
		off = (off + size) % patternPeriod
		if tl.pause > 0 {
			// A pause that would end past the window would add nothing.
			if !time.Now().Add(tl.pause).Before(tl.end) {
				break
			}
			time.Sleep(tl.pause)
		}
	}
	p.closeCleanly(tl.hard)
}

// roundTrip sends one message and reads its reply into buf.
func (p *pingpongConn) roundTrip(msg, buf []byte, streamOffset int64) bool {
	var wrote chan error
	if len(msg) <= inlineWriteMax {
		if _, err := p.c.Write(msg); err != nil {
			p.fail("write of message at stream offset %d: %v", streamOffset, err)
			return false
		}
	} else {
		// Written before reading, a message larger than the socket buffers
		// would deadlock: the server would block on replies that we do not
		// read yet. So large messages are written while the reply is read.
		wrote = make(chan error, 1)
		go func() { _, err := p.c.Write(msg); wrote <- err }()
	}
	if n, err := io.ReadFull(p.c, buf); err != nil {
		// fail closes the socket, which also ends a write still blocked.
		p.fail("read of reply at stream offset %d (got %d of %d bytes): %v", streamOffset, n, len(buf), err)
	}
	if wrote != nil {
		if err := <-wrote; err != nil {
			p.fail("write of message at stream offset %d: %v", streamOffset, err)
		}
	}
	return !p.failed.Load()
}
