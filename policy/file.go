package policy

import (
	"fmt"
	"syscall"

	"github.com/capshim/capshim/internal/trustfs"
)

// maxPolicy bounds a policy file; a real one is a few KB.
const maxPolicy = 1 << 20

// LoadTrusted opens the policy file at path once (trustfs.Open: no link
// or directory on the way that anyone but root could have placed or
// changed), and parses it from that descriptor, so the policy used is the
// file that was checked, whatever happens to the path meanwhile.
//
// A path that cannot be trusted or opened is a *trustfs.Error
// (errors.Is finds fs.ErrNotExist for a missing file, trustfs.ErrUntrusted
// for one others could have chosen); a policy that does not parse is a
// *LoadError.
func LoadTrusted(path string) (*Policy, error) {
	data, err := ReadTrusted(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// ReadTrusted opens the policy file at path as LoadTrusted does and
// returns its content, unparsed: what `capshim policy show` prints is the
// very text the runtime would parse. Errors are LoadTrusted's.
func ReadTrusted(path string) ([]byte, error) {
	f, err := trustfs.Open(path, trustfs.Read)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := readFD(f.Fd, maxPolicy, f.Stat.Size)
	if err != nil {
		return nil, &LoadError{Path: path, Msg: fmt.Sprintf("cannot read the policy: %v", err)}
	}
	return data, nil
}

// readFD reads an open file to its end, refusing more than max bytes;
// size is what fstat said the file holds.
// Plain system calls, not os.File: on the hot path this keeps Go's poller
// (epoll set-up) out of the call.
func readFD(fd, max int, size int64) ([]byte, error) {
	// The buffer is on the heap, sized to the file and one byte more (the
	// read that finds the end): a policy is a few hundred bytes, so a
	// fixed buffer would touch memory the call never uses, and one on the
	// goroutine's stack would make the runtime grow (copy) the stack. A
	// file that grows after the fstat is still read to its end.
	n := readChunk
	if size >= 0 && size < int64(max) {
		n = int(size) + 1
	}
	data := make([]byte, 0, n)
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := syscall.Read(fd, data[len(data):cap(data)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return data, nil
		}
		data = data[:len(data)+n]
		if len(data) > max {
			return nil, fmt.Errorf("larger than %d bytes; that is not a policy file", max)
		}
	}
}

// readChunk is the first read's size when fstat gives none to go by.
const readChunk = 4 << 10
