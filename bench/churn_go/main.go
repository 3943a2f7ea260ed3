// Command churn measures how many short connections a server completes per
// second: each of -conns goroutines connects, sends a -size message,
// half-closes, reads the uppercased reply to the server's end, checks it,
// and starts over. It prints one JSON object (completed counts the measured
// seconds, total the warm-up too); the exit code is 1 if any exchange
// failed.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	Conns       int     `json:"conns"`
	Seconds     float64 `json:"seconds"`
	Completed   int64   `json:"completed"`
	Total       int64   `json:"total"`
	ConnsPerSec float64 `json:"connsPerSec"`
	P50Us       float64 `json:"p50Us"`
	P99Us       float64 `json:"p99Us"`
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"firstError"`
}

func main() {
	addr := flag.String("addr", "", "server `host:port`")
	conns := flag.Int("conns", 50, "connections at a time")
	size := flag.Int("size", 64, "message bytes")
	duration := flag.Float64("duration", 5, "measured `seconds`")
	warmup := flag.Float64("warmup", 1, "warm-up `seconds`, not counted")
	sources := flag.String("sources", "", "comma-separated local source IPs, used round-robin")
	flag.Parse()
	if *addr == "" || *conns < 1 || *size < 1 || *duration <= 0 {
		fmt.Fprintln(os.Stderr, "churn: -addr is required; -conns, -size and -duration must be positive")
		os.Exit(2)
	}
	var ips []net.IP
	for _, s := range strings.Split(*sources, ",") {
		if ip := net.ParseIP(strings.TrimSpace(s)); ip != nil {
			ips = append(ips, ip)
		}
	}
	msg := make([]byte, *size)
	for i := range msg {
		msg[i] = byte('a' + i%26)
	}
	want := bytes.ToUpper(msg)

	var measuring, stop atomic.Bool
	var completed, total, errs atomic.Int64
	var firstErr atomic.Value
	var mu sync.Mutex
	var latencies []time.Duration
	var wg sync.WaitGroup
	for g := 0; g < *conns; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			dialer := net.Dialer{Timeout: 10 * time.Second}
			if len(ips) > 0 {
				dialer.LocalAddr = &net.TCPAddr{IP: ips[g%len(ips)]}
			}
			buf := make([]byte, *size+1)
			var mine []time.Duration
			for !stop.Load() {
				start := time.Now()
				err := exchange(&dialer, *addr, msg, want, buf)
				if err == nil {
					total.Add(1)
				}
				if !measuring.Load() {
					continue
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				completed.Add(1)
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}(g)
	}
	time.Sleep(time.Duration(*warmup * float64(time.Second)))
	measuring.Store(true)
	began := time.Now()
	time.Sleep(time.Duration(*duration * float64(time.Second)))
	measuring.Store(false)
	elapsed := time.Since(began).Seconds()
	stop.Store(true)
	wg.Wait()

	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds())
	}
	r := result{
		Conns: *conns, Seconds: elapsed, Completed: completed.Load(), Total: total.Load(),
		ConnsPerSec: float64(completed.Load()) / elapsed,
		P50Us:       pct(0.5), P99Us: pct(0.99), Errors: errs.Load(),
	}
	if s, ok := firstErr.Load().(string); ok {
		r.FirstError = s
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	if r.Errors > 0 {
		os.Exit(1)
	}
}

func exchange(dialer *net.Dialer, addr string, msg, want, buf []byte) error {
	conn, err := dialer.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(msg); err != nil {
		return err
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	got := 0
	for {
		n, err := conn.Read(buf[got:])
		got += n
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if got > len(want) {
			return fmt.Errorf("reply longer than %d bytes", len(want))
		}
	}
	if !bytes.Equal(buf[:got], want) {
		return fmt.Errorf("reply %q is not %q", buf[:got], want)
	}
	return nil
}
