// istio-judge answers, with Istio's own code, the two questions deployer re-implements:
//
//	istio-judge fetch [-sha256 HEX] [-insecure] URL   # istio-agent's wasm fetch (pkg/wasm)
//	istio-judge validate FILE                          # istiod's ValidateWasmPlugin / ValidateTrafficExtension
//
// Each prints one JSON object on stdout: {"ok":true,...} or {"ok":false,"error":"<Istio's
// text>"}; the exit code is 0 either way (1 only when the judge itself cannot run), so
// differential tests compare verdicts, not exit codes.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	extensions "istio.io/api/extensions/v1alpha1"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/validation"
	"istio.io/istio/pkg/log"
	"istio.io/istio/pkg/util/protomarshal"
	"istio.io/istio/pkg/util/sets"
	"istio.io/istio/pkg/wasm"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	// Istio logs to stdout by default; stdout is for the verdict alone.
	options := log.DefaultOptions()
	options.OutputPaths = []string{"stderr"}
	if err := log.Configure(options); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var verdict map[string]any
	switch os.Args[1] {
	case "fetch":
		verdict = fetch(os.Args[2:])
	case "validate":
		verdict = validate(os.Args[2:])
	default:
		usage()
	}
	out, _ := json.Marshal(verdict)
	fmt.Println(string(out))
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: istio-judge fetch [-sha256 HEX] [-insecure] URL | istio-judge validate FILE")
	os.Exit(1)
}

func fail(err error) map[string]any {
	return map[string]any{"ok": false, "error": err.Error()}
}

// fetch runs the agent's cache (LocalFileCache.Get): the same url parsing, image fetch,
// index resolution, checksum comparison and module checks, with its error texts. The module
// lands in a temp dir named by the checksum Istio recorded, which is how the sha256 is read back.
func fetch(args []string) map[string]any {
	flags := flag.NewFlagSet("fetch", flag.ExitOnError)
	sha := flags.String("sha256", "", "expected sha256 (WasmPlugin spec.sha256)")
	insecure := flags.Bool("insecure", false, "like WASM_INSECURE_REGISTRIES=*: skip TLS verification")
	_ = flags.Parse(args)
	if flags.NArg() != 1 {
		usage()
	}
	url := flags.Arg(0)
	if !strings.Contains(url, "://") {
		// Istio's WasmPlugin conversion treats a url without a scheme as oci.
		url = "oci://" + url
	}
	dir, err := os.MkdirTemp("", "istio-judge-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	options := wasm.Options{InsecureRegistries: sets.New[string]()}
	if *insecure {
		options.InsecureRegistries.Insert("*")
	}
	cache := wasm.NewLocalFileCache(dir, options)
	defer cache.Cleanup()
	path, err := cache.Get(url, wasm.GetOptions{
		Checksum:       *sha,
		ResourceName:   "judge",
		RequestTimeout: wasm.DefaultHTTPRequestTimeout,
	})
	if err != nil {
		return fail(err)
	}
	module, err := os.ReadFile(path)
	if err != nil {
		return fail(err)
	}
	return map[string]any{
		"ok":     true,
		"sha256": strings.TrimSuffix(filepath.Base(path), ".wasm"),
		"size":   len(module),
	}
}

// validate runs istiod's ValidateWasmPlugin on the spec of a WasmPlugin manifest (YAML or
// JSON), or ValidateTrafficExtension on a TrafficExtension's. The CRD's schema and CEL rules
// are the API server's part and are not run here.
func validate(args []string) map[string]any {
	if len(args) != 1 {
		usage()
	}
	text, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var object struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Spec json.RawMessage `json:"spec"`
	}
	asJSON, err := yaml.YAMLToJSON(text)
	if err != nil {
		return fail(err)
	}
	if err := json.Unmarshal(asJSON, &object); err != nil {
		return fail(err)
	}
	namespace := object.Metadata.Namespace
	if namespace == "" {
		namespace = "default"
	}
	meta := config.Meta{Name: object.Metadata.Name, Namespace: namespace}
	var warning validation.Warning
	if object.Kind == "TrafficExtension" {
		spec := &extensions.TrafficExtension{}
		if len(object.Spec) > 0 {
			if err := protomarshal.Unmarshal(object.Spec, spec); err != nil {
				return fail(fmt.Errorf("spec does not parse as istio.extensions.v1alpha1.TrafficExtension: %v", err))
			}
		}
		warning, err = validation.ValidateTrafficExtension(config.Config{Meta: meta, Spec: spec})
	} else {
		spec := &extensions.WasmPlugin{}
		if len(object.Spec) > 0 {
			if err := protomarshal.Unmarshal(object.Spec, spec); err != nil {
				return fail(fmt.Errorf("spec does not parse as istio.extensions.v1alpha1.WasmPlugin: %v", err))
			}
		}
		warning, err = validation.ValidateWasmPlugin(config.Config{Meta: meta, Spec: spec})
	}
	verdict := map[string]any{"ok": err == nil}
	if err != nil {
		verdict["error"] = err.Error()
	}
	if warning != nil {
		verdict["warning"] = warning.Error()
	}
	return verdict
}
