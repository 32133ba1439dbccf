package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/migrant-health/mhg/gateway/config"
)

// pprofHandler serves Go's profiler (net/http/pprof) under /debug/pprof/.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// startPprof serves the profiler on server.pprof_listen, a loopback
// address only (checked again here on the address actually bound), on a
// listener of its own so that nothing of it is reachable through the
// gateway's port. It returns a function that stops it.
func (s *Server) startPprof() (stop func(context.Context) error, err error) {
	addr := s.cfg.Server.PprofListen
	if addr == "" {
		return func(context.Context) error { return nil }, nil
	}
	if !config.LoopbackAddr(addr) {
		return nil, &SettingError{Setting: "server.pprof_listen", Value: addr, Err: errors.New("not a loopback address")}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &SettingError{Setting: "server.pprof_listen", Value: addr, Err: err}
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		ln.Close()
		return nil, &SettingError{Setting: "server.pprof_listen", Value: addr, Err: fmt.Errorf("bound %s, not a loopback address", ln.Addr())}
	}
	srv := &http.Server{
		Handler:           pprofHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		// A CPU profile or trace takes as long as asked (?seconds=N).
		WriteTimeout: 10 * time.Minute,
	}
	go func() { _ = srv.Serve(ln) }()
	s.log.Info("profiler listening (loopback only)", "addr", ln.Addr().String(), "path", "/debug/pprof/")
	s.pprofAddr = ln.Addr().String()
	return srv.Shutdown, nil
}
