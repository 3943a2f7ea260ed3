package main

// The hold modes bring every connection into one state, print a "ready"
// line, and hold that state while the harness measures the server; when
// stdin ends, they finish whatever each connection left unfinished, check
// that it is still served, and close it cleanly.
//
//	idle        one 16-byte exchange
//	bulk-idle   one exchange of -size bytes (256 KiB), sent while the reply is read
//	no-read     writes of -size bytes (16 KiB) until the server stops reading; nothing read
//	mid-stream  streams -size bytes + 1 (in -text iota, half a character) while
//	            reading the reply, then stops without closing

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// holdChunk is the most a hold-mode connection writes at once.
const holdChunk = 64 << 10

// text is what hold-mode connections send and the reply they expect. Both
// repeat with a period; sent is one period plus holdChunk bytes long, and
// want as much times unitOut/unitIn, so that any write or read is one
// contiguous slice.
type text struct {
	unitIn, unitOut int
	period          int
	sent, want      []byte
}

func newText(name string) *text {
	if name == "iota" {
		// U+0390 uppercases to U+0399 U+0308 U+0301: 2 bytes in, 6 out, the
		// most that any character grows, so the worst case for the memory
		// of --unicode.
		in, out := []byte("\u0390"), []byte("\u0399\u0308\u0301")
		n := (patternPeriod + holdChunk) / len(in)
		return &text{
			unitIn: len(in), unitOut: len(out), period: patternPeriod,
			sent: bytes.Repeat(in, n), want: bytes.Repeat(out, n),
		}
	}
	p := newPattern(holdChunk)
	return &text{unitIn: 1, unitOut: 1, period: patternPeriod, sent: p.sent, want: p.want}
}

// replyLen is the reply owed for the first `sent` bytes: whole characters only.
func (t *text) replyLen(sent int64) int64 {
	return sent / int64(t.unitIn) * int64(t.unitOut)
}

type holdReady struct {
	Ready          bool    `json:"ready"`
	Conns          int     `json:"conns"`
	Connected      int     `json:"connected"`
	Errors         int     `json:"errors"`
	ConnectSeconds float64 `json:"connectSeconds"`
	// Bytes each connection sent to get into its state, on average.
	BytesSentPerConn float64 `json:"bytesSentPerConn"`
}

type holdResult struct {
	common
	SecondExchangeOk int `json:"secondExchangeOk"`
}

// holdConn is one connection's stream: bytes sent from a character-aligned
// start in the text, and reply bytes received, each checked.
type holdConn struct {
	*conn
	t     *text
	start int64
	sent  int64
	recv  int64
}

func (h *holdConn) write(n int64) bool {
	for n > 0 {
		piece := int(min64(n, holdChunk))
		off := int((h.start + h.sent) % int64(h.t.period))
		w, err := h.c.Write(h.t.sent[off : off+piece])
		h.sent += int64(w)
		n -= int64(w)
		if err != nil {
			h.fail("write after %d bytes: %v", h.sent, err)
			return false
		}
	}
	return true
}

// readUntil reads and checks the reply until `until` bytes have come.
func (h *holdConn) readUntil(until int64) bool {
	wantPeriod := int64(h.t.period / h.t.unitIn * h.t.unitOut)
	buf := make([]byte, min64(until-h.recv, readBufSize))
	for h.recv < until {
		n, err := h.c.Read(buf[:min64(until-h.recv, int64(len(buf)))])
		if n > 0 {
			off := (h.start/int64(h.t.unitIn)*int64(h.t.unitOut) + h.recv) % wantPeriod
			if want := h.t.want[off : off+int64(n)]; !bytes.Equal(buf[:n], want) {
				i := 0
				for buf[i] == want[i] {
					i++
				}
				h.fail("reply byte mismatch at reply offset %d: expected %s, got %s",
					h.recv+int64(i), showByte(want[i]), showByte(buf[i]))
				return false
			}
			h.recv += int64(n)
		}
		if err != nil {
			h.fail("read after %d of %d reply bytes: %v", h.recv, until, err)
			return false
		}
	}
	return true
}

// exchange sends n bytes while reading the reply they are owed.
func (h *holdConn) exchange(n int64) bool {
	until := h.t.replyLen(h.sent + n)
	wrote := make(chan bool, 1)
	go func() { wrote <- h.write(n) }()
	read := h.readUntil(until)
	return <-wrote && read
}

// stuff writes until the server stops reading: a write that makes no
// progress for `stall` means that every buffer on the way is full.
func (h *holdConn) stuff(size int, stall time.Duration, deadline time.Time) bool {
	for time.Now().Before(deadline) {
		if err := h.c.SetWriteDeadline(time.Now().Add(stall)); err != nil {
			h.fail("set deadline: %v", err)
			return false
		}
		off := int((h.start + h.sent) % int64(h.t.period))
		n, err := h.c.Write(h.t.sent[off : off+size])
		h.sent += int64(n)
		if err != nil && !isTimeout(err) {
			h.fail("write after %d bytes: %v", h.sent, err)
			return false
		}
		if err != nil && n == 0 {
			return h.c.SetWriteDeadline(deadline) == nil
		}
	}
	h.fail("the server was still reading after %d bytes", h.sent)
	return false
}

// enter brings the connection into the mode's state.
func (h *holdConn) enter(cfg config, deadline time.Time) bool {
	if err := h.c.SetDeadline(deadline); err != nil {
		h.fail("set deadline: %v", err)
		return false
	}
	switch cfg.mode {
	case "no-read":
		return h.stuff(cfg.size, cfg.stall, deadline)
	case "mid-stream":
		n := int64(cfg.size) + 1
		wrote := make(chan bool, 1)
		go func() { wrote <- h.write(n) }()
		read := h.readUntil(h.t.replyLen(n))
		return <-wrote && read
	default:
		return h.exchange(int64(cfg.size))
	}
}

// leave completes the character cut short, reads every reply still owed,
// proves the connection is served with one more exchange, and closes.
func (h *holdConn) leave(deadline time.Time) bool {
	if err := h.c.SetDeadline(deadline); err != nil {
		h.fail("set deadline: %v", err)
		return false
	}
	rest := (int64(h.t.unitIn) - h.sent%int64(h.t.unitIn)) % int64(h.t.unitIn)
	if !h.exchange(rest) || !h.exchange(idleMsgSize) {
		return false
	}
	h.closeCleanly(deadline)
	return !h.failed.Load()
}

func runHold(cfg config) (any, *errorLog) {
	errs := &errorLog{}
	if cfg.mode == "no-read" {
		// Small buffers on our side, set before the handshake so that the
		// window stays small, keep the kernel memory of a thousand stuck
		// connections in bounds.
		cfg.socketBuffer = holdChunk
	}
	t := newText(cfg.text)
	t0 := time.Now()
	deadline := t0.Add(cfg.connectTimeout)
	// Each connection gets into its state as it opens, within its dial
	// slot: at most -concurrency-connect connections are on their way at
	// once, as with a hundred thousand idle ones, and the kernel's socket
	// buffers stay in bounds.
	var mu sync.Mutex
	var holds []*holdConn
	dialAll(cfg, errs, func(k *conn) bool {
		// Whole characters from the connection's own place in the text.
		start := int64(startOffset(k.id) / t.unitIn * t.unitIn)
		h := &holdConn{conn: k, t: t, start: start}
		if !h.enter(cfg, deadline) {
			return false
		}
		mu.Lock()
		holds = append(holds, h)
		mu.Unlock()
		return true
	})
	connectTime := time.Since(t0)
	var sent int64
	for _, h := range holds {
		sent += h.sent
	}
	printJSON(holdReady{
		Ready:            true,
		Conns:            cfg.conns,
		Connected:        len(holds),
		Errors:           errs.total(),
		ConnectSeconds:   round(connectTime.Seconds(), 3),
		BytesSentPerConn: round(float64(sent)/float64(max(len(holds), 1)), 0),
	})
	// The harness measures the server while we hold the connections open,
	// and closes our stdin when it is done.
	cpu0 := sampleCPU()
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		errs.add(fmt.Sprintf("reading stdin: %v", err))
	}
	cpu1 := sampleCPU()

	finish := time.Now().Add(cfg.connectTimeout)
	startWatchdog(cfg, finish.Add(grace), errs)
	ok := eachConn(holds, func(h *holdConn) bool { return h.leave(finish) })

	res := holdResult{SecondExchangeOk: len(ok)}
	res.common = newCommon(cfg, len(holds), connectTime, cpu0, cpu1, errs)
	fmt.Fprintf(os.Stderr, "loadgen: %s %d conns: %d still served, errors %d\n",
		cfg.mode, len(holds), res.SecondExchangeOk, res.Errors)
	return res, errs
}

// eachConn runs f on every connection at once and returns those for which
// it succeeded.
func eachConn(holds []*holdConn, f func(*holdConn) bool) []*holdConn {
	passed := make([]bool, len(holds))
	var wg sync.WaitGroup
	for i, h := range holds {
		wg.Add(1)
		go func(i int, h *holdConn) {
			defer wg.Done()
			passed[i] = f(h)
		}(i, h)
	}
	wg.Wait()
	var out []*holdConn
	for i, h := range holds {
		if passed[i] {
			out = append(out, h)
		}
	}
	return out
}

// setSocketBuffers sets SO_RCVBUF and SO_SNDBUF on a socket before it
// connects.
func setSocketBuffers(size int) func(string, string, syscall.RawConn) error {
	return func(_, _ string, raw syscall.RawConn) error {
		var err error
		if cerr := raw.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
			if err == nil {
				err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, size)
			}
		}); cerr != nil {
			return cerr
		}
		return err
	}
}

func min64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}
