package pinned

import "errors"

// Options place the pins and the lock; the zero value means the defaults.
type Options struct {
	Dir  string // bpffs directory of the pins (DefaultDir)
	Lock string // lock file that orders capshim processes (DefaultLock)
}

// WithDefaults fills in the defaults.
func (o Options) WithDefaults() Options {
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	if o.Lock == "" {
		o.Lock = DefaultLock
	}
	return o
}

// WatchPinned watches cg on the recorder already pinned, under the lock.
// ErrNoPins or a *StaleError say the recorder must be loaded first (by
// trace.Attach, in capshim-trace); nothing is changed then.
func WatchPinned(opts Options, cg Cgroup) error {
	opts = opts.WithDefaults()
	unlock, err := Lock(opts.Lock)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := Open(opts.Dir)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Watch(cg)
}

// HarvestPinned takes what cgroup id recorded, drops the entries of
// cgroups that are gone, and unpins the recorder when nothing is watched
// any more, all under the lock. ErrNoPins: no recorder is pinned, so
// nothing was recorded.
func HarvestPinned(opts Options, id uint64) (Record, error) {
	opts = opts.WithDefaults()
	unlock, err := Lock(opts.Lock)
	if err != nil {
		return Record{}, err
	}
	defer unlock()
	r, err := Open(opts.Dir)
	if errors.Is(err, ErrNoPins) {
		// Perhaps a partial set of pins: nothing in it is of use.
		RemovePins(opts.Dir)
		return Record{}, err
	}
	if err != nil {
		return Record{}, err
	}
	rec, herr := r.harvest(id)
	// Whatever happened to this entry, entries of vanished cgroups go, and
	// the recorder with them when none is left; the levels are written
	// from the same listing of the map.
	r.reclaim(nil, true)
	// A failed unpin is retried by the next harvest or reclaim.
	r.ReleaseIdle(opts.Dir)
	r.Close()
	return rec, herr
}

// ReleaseIdle closes r and unpins the recorder in dir when no cgroup is
// watched, and reports whether it did; r stays open otherwise.
func (r *Recorder) ReleaseIdle(dir string) (bool, error) {
	idle, err := r.Idle()
	if err != nil || !idle {
		return false, err
	}
	r.Close()
	if err := RemovePins(dir); err != nil {
		return false, err
	}
	return true, nil
}
