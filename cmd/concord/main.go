// Command concord is Concord's one binary: the coordinator, the participant
// services, the demo and the tools around them, one subcommand per file.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/concordtx/concord/wire"
)

// command is one subcommand. run gets the arguments after the subcommand's
// name and returns the process exit status.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands is filled by each subcommand's file in its init function.
var commands = map[string]command{}

func register(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	commands[name] = command{summary: summary, run: run}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		return runVersion(args[1:], stdout, stderr)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "concord: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return cmd.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: concord <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'concord <command> -h' for a command's flags.")
}

// parseFlags parses a subcommand's arguments into fs (made with
// flag.ContinueOnError and its output set to stderr, so the flag package has
// already said what is wrong). It reports false, with the exit status, when
// the command must end: 0 for -h, 2 for a bad flag or a stray argument.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		return usageError(fs, stderr)("unexpected argument %q", fs.Arg(0)), false
	}
	return 0, true
}

// usageError returns a function that prints a usage error of fs's command
// ("concord NAME: ...") and returns exit status 2.
func usageError(fs *flag.FlagSet, stderr io.Writer) func(format string, a ...any) int {
	return func(format string, a ...any) int {
		fmt.Fprintf(stderr, fs.Name()+": "+format+"\n", a...)
		return 2
	}
}

// failer returns a command's way to fail: it prints "concord NAME: ..." on
// stderr and, when the command was given --json, {"error": "..."} on
// stdout, so that a program reading a --json command's output always gets
// JSON; it returns status.
func failer(name string, asJSON *bool, stdout, stderr io.Writer) func(status int, format string, a ...any) int {
	return func(status int, format string, a ...any) int {
		msg := fmt.Sprintf(format, a...)
		fmt.Fprintf(stderr, "%s: %s\n", name, msg)
		if asJSON != nil && *asJSON {
			json.NewEncoder(stdout).Encode(wire.ErrorResponse{Error: name + ": " + msg})
		}
		return status
	}
}
