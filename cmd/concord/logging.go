package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// logFlags are the --log-format and --log-level flags of the servers.
type logFlags struct {
	format, level string
}

func addLogFlags(fs *flag.FlagSet) *logFlags {
	l := &logFlags{}
	fs.StringVar(&l.format, "log-format", "text", "log line `format`: text (key=value, for people) or json (one object a line, for programs)")
	fs.StringVar(&l.level, "log-level", "info", "least `level` logged: debug (also every decision), info, warn or error")
	return l
}

// logger returns a logger writing to w as the flags say, or an error naming
// the bad flag.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(l.level) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", l.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", l.format)
}

// announcer writes the lines a server prints for people besides its log:
// start, shutdown, warnings and errors. With --log-format text each is the
// message as it stands; with json each is one JSON object like the log's
// (time, level, msg and the attributes), so that every line the process
// writes is JSON. Info goes to out, warnings and errors to err; none is
// held back by --log-level.
type announcer struct {
	json     bool
	out, err io.Writer
}

func (l *logFlags) announcer(stdout, stderr io.Writer) announcer {
	return announcer{json: l.format == "json", out: stdout, err: stderr}
}

func (a announcer) line(w io.Writer, level slog.Level, prefix, msg string, attrs ...any) {
	if !a.json {
		fmt.Fprintln(w, prefix+msg)
		return
	}
	slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})).Log(context.Background(), level, msg, attrs...)
}

// info prints msg on stdout.
func (a announcer) info(msg string, attrs ...any) { a.line(a.out, slog.LevelInfo, "", msg, attrs...) }

// warn prints msg on stderr, after "WARNING: " in text.
func (a announcer) warn(msg string, attrs ...any) {
	a.line(a.err, slog.LevelWarn, "WARNING: ", msg, attrs...)
}

// error prints msg on stderr.
func (a announcer) error(msg string, attrs ...any) { a.line(a.err, slog.LevelError, "", msg, attrs...) }

// usageError is usageError(fs, ...) printing through a: a bad flag found
// after the log format is known is reported in that format.
func (a announcer) usageError(fs *flag.FlagSet) func(format string, args ...any) int {
	return func(format string, args ...any) int {
		a.error(fmt.Sprintf(fs.Name()+": "+format, args...))
		return 2
	}
}
