package telemetry

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// LogWriter buffers log lines and writes them out every interval (or when
// 64 KiB have piled up), instead of one write system call per line. Under
// load the access log is one line per request, and the syscalls were the
// largest single cost of logging. A crash can lose at most one interval of
// lines; Close flushes everything, and run() closes it last.
type LogWriter struct {
	mu        sync.Mutex
	buf       *bufio.Writer // nil: unbuffered
	dstDirect io.Writer
	stop      chan struct{}
	done      chan struct{}
}

// NewLogWriter starts the flusher. interval <= 0 disables buffering: every
// line is written through at once.
func NewLogWriter(dst io.Writer, interval time.Duration) *LogWriter {
	l := &LogWriter{stop: make(chan struct{}), done: make(chan struct{})}
	if interval <= 0 {
		l.dstDirect = dst
		close(l.done)
		return l
	}
	l.buf = bufio.NewWriterSize(dst, 64<<10)
	go l.flushEvery(interval)
	return l
}

func (l *LogWriter) flushEvery(interval time.Duration) {
	defer close(l.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.Flush()
		}
	}
}

// Write appends one or more complete lines.
func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf == nil {
		return l.dstDirect.Write(p)
	}
	return l.buf.Write(p)
}

// Flush writes out what is buffered.
func (l *LogWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf == nil {
		return nil
	}
	return l.buf.Flush()
}

// Close stops the flusher and flushes. Writes after Close still work and go
// through the buffer, so call Flush again if you log after closing.
func (l *LogWriter) Close() error {
	select {
	case <-l.stop:
	default:
		if l.buf != nil {
			close(l.stop)
		}
	}
	<-l.done
	return l.Flush()
}
