// Stand-in for "the same logger on proxy-wasm-go-sdk" (see BENCHMARKS.md for why the SDK
// itself cannot be built here): a standard-Go (GOOS=wasip1, -buildmode=c-shared) module that
// is shaped like the Go SDK at run time: the Go runtime and GC in the VM, the SDK's set of
// exported callbacks (so Envoy makes the same V8 calls per stream), and per-context objects
// kept in maps from proxy_on_context_create until proxy_on_delete.
package main

import "unsafe"

//go:wasmimport env proxy_log
func proxyLog(level uint32, data unsafe.Pointer, size uint32) uint32

const logInfo = 2

type rootContext struct{}

type streamContext struct {
	root uint32
	http bool
}

var (
	roots   = map[uint32]*rootContext{}
	streams = map[uint32]*streamContext{}
	// The host writes into buffers it asked us to allocate; keep the last one reachable.
	lastAlloc []byte
)

func logLine(msg string) {
	b := []byte(msg)
	proxyLog(logInfo, unsafe.Pointer(&b[0]), uint32(len(b)))
}

//go:wasmexport proxy_abi_version_0_2_1
func proxyAbiVersion() {}

//go:wasmexport proxy_on_memory_allocate
func proxyOnMemoryAllocate(size uint32) unsafe.Pointer {
	lastAlloc = make([]byte, size+1)
	return unsafe.Pointer(&lastAlloc[0])
}

//go:wasmexport proxy_on_vm_start
func proxyOnVMStart(rootID uint32, size uint32) uint32 { return 1 }

//go:wasmexport proxy_on_configure
func proxyOnConfigure(rootID uint32, size uint32) uint32 { return 1 }

//go:wasmexport proxy_on_context_create
func proxyOnContextCreate(id uint32, parent uint32) {
	if parent == 0 {
		roots[id] = &rootContext{}
		return
	}
	// Like the SDK: the plugin context decides the kind; this one serves HTTP.
	streams[id] = &streamContext{root: parent, http: true}
	logLine("NewHttpContext")
}

//go:wasmexport proxy_on_request_headers
func proxyOnRequestHeaders(id uint32, n uint32, eos uint32) uint32 { return lookup(id) }

//go:wasmexport proxy_on_request_body
func proxyOnRequestBody(id uint32, n uint32, eos uint32) uint32 { return lookup(id) }

//go:wasmexport proxy_on_request_trailers
func proxyOnRequestTrailers(id uint32, n uint32) uint32 { return lookup(id) }

//go:wasmexport proxy_on_response_headers
func proxyOnResponseHeaders(id uint32, n uint32, eos uint32) uint32 { return lookup(id) }

//go:wasmexport proxy_on_response_body
func proxyOnResponseBody(id uint32, n uint32, eos uint32) uint32 { return lookup(id) }

//go:wasmexport proxy_on_response_trailers
func proxyOnResponseTrailers(id uint32, n uint32) uint32 { return lookup(id) }

//go:wasmexport proxy_on_new_connection
func proxyOnNewConnection(id uint32) uint32 { return lookup(id) }

//go:wasmexport proxy_on_downstream_data
func proxyOnDownstreamData(id uint32, n uint32, eos uint32) uint32 { return lookup(id) }

//go:wasmexport proxy_on_upstream_data
func proxyOnUpstreamData(id uint32, n uint32, eos uint32) uint32 { return lookup(id) }

//go:wasmexport proxy_on_downstream_connection_close
func proxyOnDownstreamClose(id uint32, peer uint32) { lookup(id) }

//go:wasmexport proxy_on_upstream_connection_close
func proxyOnUpstreamClose(id uint32, peer uint32) { lookup(id) }

//go:wasmexport proxy_on_log
func proxyOnLog(id uint32) { lookup(id) }

//go:wasmexport proxy_on_done
func proxyOnDone(id uint32) uint32 { return 1 }

//go:wasmexport proxy_on_delete
func proxyOnDelete(id uint32) {
	delete(streams, id)
	delete(roots, id)
}

//go:wasmexport proxy_on_tick
func proxyOnTick(id uint32) {}

//go:wasmexport proxy_on_queue_ready
func proxyOnQueueReady(id uint32, queue uint32) {}

//go:wasmexport proxy_on_http_call_response
func proxyOnHTTPCallResponse(id, token, headers, body, trailers uint32) {}

// Every SDK callback first finds its context object, then calls the plugin's method (a no-op
// for this logger) and returns Continue.
func lookup(id uint32) uint32 {
	_ = streams[id]
	return 0
}

func main() {}
