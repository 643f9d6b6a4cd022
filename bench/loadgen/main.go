// Fixed-rate (open-loop) HTTP load for bench/run. wrk only measures at saturation and wrk2 is
// not packaged; this sends requests on a fixed schedule over N keep-alive connections and
// measures each latency from the moment the request was due, not from when a connection
// became free, so a stalled proxy shows up in the tail (no coordinated omission).
// Prints one JSON line: {"sent":..,"ok":..,"p50_us":..,"p99_us":..}.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"time"
)

func main() {
	rate := flag.Int("rate", 10000, "requests per second")
	duration := flag.Duration("d", 4*time.Second, "how long to send")
	conns := flag.Int("c", 16, "connections")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: loadgen [-rate N] [-d 4s] [-c 16] URL")
		os.Exit(2)
	}
	url := flag.Arg(0)
	transport := &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	total := int(float64(*rate) * duration.Seconds())
	due := make(chan time.Time, total)
	type result struct {
		latency time.Duration
		ok      bool
	}
	results := make(chan result, total)
	for i := 0; i < *conns; i++ {
		go func() {
			for t := range due {
				resp, err := client.Get(url)
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				results <- result{time.Since(t), ok}
			}
		}()
	}
	start := time.Now()
	interval := time.Second / time.Duration(*rate)
	for i := 0; i < total; i++ {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		due <- at
	}
	close(due)
	latencies := make([]time.Duration, 0, total)
	ok := 0
	for i := 0; i < total; i++ {
		r := <-results
		latencies = append(latencies, r.latency)
		if r.ok {
			ok++
		}
	}
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds())
	}
	out, _ := json.Marshal(map[string]any{"sent": total, "ok": ok, "p50_us": pct(0.50), "p99_us": pct(0.99)})
	fmt.Println(string(out))
}
