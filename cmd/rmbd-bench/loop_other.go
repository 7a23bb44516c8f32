//go:build !linux

package main

import (
	"context"
	"errors"
	"sync"
	"time"
)

// udpLoop, where epoll is missing, runs each UDP client on a goroutine of
// its own with a blocking socket: the load tool then costs more of the
// machine than on Linux, so figures from it are not comparable.
type udpLoop struct {
	workers []*udpWorker
	picks   []func(int) (op, [][]byte)
}

func newUDPLoop(c config, picks []func(int) (op, [][]byte)) (*udpLoop, error) {
	l := &udpLoop{picks: picks}
	for id := range picks {
		w, err := dialUDP(c, id)
		if err != nil {
			l.close()
			return nil, err
		}
		l.workers = append(l.workers, w)
	}
	return l, nil
}

func (l *udpLoop) close() {
	for _, w := range l.workers {
		w.close()
	}
}

// run drives the clients until ctx ends.
func (l *udpLoop) run(ctx context.Context, total *stats) error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(l.workers))
	for id, w := range l.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newStats()
			for i := 0; ctx.Err() == nil; i++ {
				o, keys := l.picks[id](i)
				began := time.Now()
				wrong, err := w.do(o, keys)
				switch {
				case errors.Is(err, errLost):
					s.lost++
					continue
				case err != nil:
					errs <- err
					return
				}
				s.hist.RecordValue(time.Since(began).Microseconds())
				s.requests++
				s.keys += int64(len(keys))
				s.wrong += int64(wrong)
			}
			mu.Lock()
			total.merge(s)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
