package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// environment is the process's RMBD_* variables.
type environment map[string]string

// osEnvironment reads the RMBD_* variables of the process.
func osEnvironment() environment {
	e := environment{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "RMBD_") {
			e[k] = v
		}
	}
	return e
}

func (e environment) get(k string) string { return e[k] }

// envName is the variable that sets flag name.
func envName(name string) string {
	return "RMBD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// extraEnv are RMBD_* variables that are not flags.
var extraEnv = []string{"RMBD_CLUSTER_KEY"}

// unknownEnv lists, sorted, the RMBD_* variables that set nothing: most
// likely misspelled.
func unknownEnv(e environment, fs *pflag.FlagSet) []string {
	known := map[string]bool{}
	fs.VisitAll(func(f *pflag.Flag) { known[envName(f.Name)] = true })
	for _, k := range extraEnv {
		known[k] = true
	}
	var out []string
	for k := range e {
		if !known[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// sources says where each flag's value came from, so that an error names
// what the user wrote: "--fp-rate 2" or "RMBD_FP_RATE=2".
type sources map[string]string

func (s sources) of(fs *pflag.FlagSet, name string) string {
	if src, ok := s[name]; ok {
		return src
	}
	return fmt.Sprintf("--%s %s", name, fs.Lookup(name).Value.String())
}

// name is the flag or variable that set flag: "--fp-rate" or "RMBD_FP_RATE".
func (s sources) name(flag string) string {
	if _, ok := s[flag]; ok {
		return envName(flag)
	}
	return "--" + flag
}
