package upstream

import (
	"bufio"
	"context"
	"net"
	"slices"
	"sync/atomic"
	"time"
)

// pconn is one pooled HTTP/1.1 connection to an endpoint. It serves one
// request at a time; between requests it sits in its endpoint's idle list.
type pconn struct {
	c        *Cluster
	ep       *endpoint
	conn     net.Conn
	tls      bool
	sni      string
	br       *bufio.Reader
	bw       *bufio.Writer
	written  atomic.Int64 // bytes of the current request written
	requests int64        // requests served, including the current one
	// unchecked: the current request runs on a pooled connection that was
	// not peeked for liveness.
	unchecked bool
	idleSince time.Time   // when it last went idle; guarded by Cluster.mu
	timer     *time.Timer // idle timeout; guarded by Cluster.mu
}

// Write counts the request bytes that reach the socket.
func (pc *pconn) Write(p []byte) (int, error) {
	n, err := pc.conn.Write(p)
	pc.written.Add(int64(n))
	return n, err
}

func newPconn(c *Cluster, ep *endpoint, conn net.Conn, isTLS bool, sni string) *pconn {
	pc := &pconn{c: c, ep: ep, conn: conn, tls: isTLS, sni: sni}
	pc.br = bufio.NewReaderSize(conn, 4096)
	pc.bw = bufio.NewWriterSize(pc, 4096)
	return pc
}

// peekAfter is how long a connection sits idle before its reuse costs a
// liveness peek (a syscall). Servers close idle keep-alive connections
// after seconds, not milliseconds; a connection closed sooner is caught
// by the resend of roundTrip1 and the proxy's resend of unwritten
// requests.
const peekAfter = 250 * time.Millisecond

// grant is what a waiting request receives: an idle connection, or
// (pc nil) a reserved connection slot to dial with.
type grant struct{ pc *pconn }

// waiter is a request pending for a connection to ep.
type waiter struct {
	ep  *endpoint
	sni string
	ch  chan grant // buffered 1
}

// getConn returns a connection to ep for one request: an idle one, a new
// one if maxConnections allows (or ep has none: Envoy always lets a host
// with no connection open one), else it waits as a pending request until a
// connection frees or ctx ends. Pending requests, including those waiting
// for their dial, are bounded by maxPendingRequests (ErrOverflow).
func (c *Cluster) getConn(ctx context.Context, s *settings, ep *endpoint, sni string) (*pconn, error) {
	for {
		c.mu.Lock()
		pc := c.takeIdleLocked(ep, sni)
		if pc == nil {
			break
		}
		c.mu.Unlock()
		pc.unchecked = c.m.opts.Clock.Now().Sub(pc.idleSince) < peekAfter
		if pc.unchecked || alive(pc.conn, pc.tls) {
			return pc, nil
		}
		c.closeConn(pc)
	}
	// c.mu is held.
	if c.pending >= s.limits.MaxPendingRequests {
		c.mu.Unlock()
		c.stats.pendingOverflow.Add(1)
		return nil, ErrOverflow
	}
	c.pending++
	var evict *pconn
	if !c.canDialLocked(s, ep) {
		evict = c.evictIdleLocked()
	}
	if evict == nil && !c.canDialLocked(s, ep) {
		w := &waiter{ep: ep, sni: sni, ch: make(chan grant, 1)}
		c.waiters = append(c.waiters, w)
		c.mu.Unlock()
		return c.wait(ctx, s, w)
	}
	c.reserveLocked(ep)
	c.mu.Unlock()
	if evict != nil {
		c.closeConn(evict)
	}
	return c.dialPending(ctx, s, ep, sni)
}

// dialPending dials for a pending request that holds a reserved slot.
func (c *Cluster) dialPending(ctx context.Context, s *settings, ep *endpoint, sni string) (*pconn, error) {
	conn, isTLS, err := c.dial(ctx, s, ep, sni)
	c.mu.Lock()
	c.pending--
	c.mu.Unlock()
	if err != nil {
		c.unreserve(ep)
		return nil, err
	}
	return newPconn(c, ep, conn, isTLS, sni), nil
}

// wait blocks a pending request until it is granted a connection or a slot.
func (c *Cluster) wait(ctx context.Context, s *settings, w *waiter) (*pconn, error) {
	select {
	case g := <-w.ch:
		if g.pc != nil {
			c.mu.Lock()
			c.pending--
			c.mu.Unlock()
			g.pc.unchecked = true // released just now
			return g.pc, nil
		}
		return c.dialPending(ctx, s, w.ep, w.sni)
	case <-ctx.Done():
	}
	c.mu.Lock()
	c.pending--
	i := slices.Index(c.waiters, w)
	if i >= 0 {
		c.waiters = slices.Delete(c.waiters, i, i+1)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
	c.mu.Unlock()
	if g := <-w.ch; g.pc != nil { // granted as ctx ended: pass it on
		c.putIdle(g.pc)
	} else {
		c.unreserve(w.ep)
	}
	return nil, ctx.Err()
}

// canDialLocked reports whether a new connection to ep may open. Caller
// must hold c.mu.
func (c *Cluster) canDialLocked(s *settings, ep *endpoint) bool {
	return ep.nconns == 0 || c.cx < s.limits.MaxConnections
}

// reserveLocked counts a connection about to be dialled. Caller must hold
// c.mu.
func (c *Cluster) reserveLocked(ep *endpoint) {
	c.cx++
	ep.nconns++
}

// unreserve releases a connection slot (a failed dial or a closed
// connection) and hands the freed capacity to a pending request.
func (c *Cluster) unreserve(ep *endpoint) {
	c.mu.Lock()
	c.cx--
	ep.nconns--
	c.forgetLocked(ep)
	c.wakeDialersLocked()
	c.mu.Unlock()
}

// wakeDialersLocked grants dial slots to pending requests, in arrival
// order, while the breaker allows. Caller must hold c.mu.
func (c *Cluster) wakeDialersLocked() {
	s := c.set.Load()
	for i := 0; i < len(c.waiters); {
		w := c.waiters[i]
		if !c.canDialLocked(s, w.ep) {
			i++
			continue
		}
		c.waiters = slices.Delete(c.waiters, i, i+1)
		c.reserveLocked(w.ep)
		w.ch <- grant{}
	}
}

// takeIdleLocked pops ep's most recently used idle connection with sni.
// Caller must hold c.mu.
func (c *Cluster) takeIdleLocked(ep *endpoint, sni string) *pconn {
	for i := len(ep.idle) - 1; i >= 0; i-- {
		if pc := ep.idle[i]; pc.sni == sni {
			ep.idle = slices.Delete(ep.idle, i, i+1)
			if pc.timer != nil {
				pc.timer.Stop()
			}
			return pc
		}
	}
	return nil
}

// evictIdleLocked removes some idle connection of the cluster, to be
// closed so that a request for another endpoint or SNI can dial. Caller
// must hold c.mu.
func (c *Cluster) evictIdleLocked() *pconn {
	for _, ep := range c.view.Load().list {
		if n := len(ep.idle); n > 0 {
			pc := ep.idle[0]
			ep.idle = slices.Delete(ep.idle, 0, 1)
			if pc.timer != nil {
				pc.timer.Stop()
			}
			return pc
		}
	}
	return nil
}

// putIdle returns a connection after a complete exchange: to a request
// pending for it, else to the idle list with the idle timeout armed.
// Connections of removed endpoints or a closed cluster are closed.
func (c *Cluster) putIdle(pc *pconn) {
	pc.unchecked = false
	now := c.m.opts.Clock.Now()
	c.mu.Lock()
	if c.closed || pc.ep.removed || pc.br.Buffered() > 0 {
		c.mu.Unlock()
		c.closeConn(pc)
		return
	}
	for i, w := range c.waiters {
		if w.ep == pc.ep && w.sni == pc.sni {
			c.waiters = slices.Delete(c.waiters, i, i+1)
			c.mu.Unlock()
			w.ch <- grant{pc}
			return
		}
	}
	pc.idleSince = now
	pc.ep.idle = append(pc.ep.idle, pc)
	if idle := c.set.Load().idle; idle > 0 {
		if pc.timer == nil {
			pc.timer = time.AfterFunc(idle, func() { c.idleExpired(pc) })
		} else {
			pc.timer.Reset(idle)
		}
	}
	c.mu.Unlock()
}

// idleExpired closes pc if it is still idle when its timeout fires.
func (c *Cluster) idleExpired(pc *pconn) {
	c.mu.Lock()
	i := slices.Index(pc.ep.idle, pc)
	if i >= 0 {
		pc.ep.idle = slices.Delete(pc.ep.idle, i, i+1)
	}
	c.mu.Unlock()
	if i >= 0 {
		c.closeConn(pc)
	}
}

// closeConn closes a connection and releases its slot.
func (c *Cluster) closeConn(pc *pconn) {
	pc.conn.Close()
	pc.ep.cxActive.Add(-1)
	c.mu.Lock()
	if pc.timer != nil {
		pc.timer.Stop()
	}
	c.mu.Unlock()
	c.unreserve(pc.ep)
}
