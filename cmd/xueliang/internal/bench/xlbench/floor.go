package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/pion/rtp"

	"xueliang/ingest/rtspconn"
)

// runFloor is `xlbench floor`: the receive floor. One gortsplib client per
// camera (TCP and rtspconn's buffered reads and video payload tap, like the
// pullers; with -stock gortsplib's own dialer) reads every RTP packet and
// discards it.
// It prints "floor: ready" once every client plays, and on SIGTERM the
// packet and loss counts.
func runFloor(args []string) {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	url := fs.String("url", "", "camsim base URL rtsp://host:port")
	n := fs.Int("cameras", 1, "cameras cam1..camN")
	stock := fs.Bool("stock", false, "dial like a stock gortsplib client (its 4 KiB reads) instead of like the pullers")
	_ = fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var pkts, lost atomic.Uint64
	tcp := gortsplib.TransportTCP
	var clients []*gortsplib.Client
	for i := 1; i <= *n; i++ {
		u, err := base.ParseURL(fmt.Sprintf("%s/cam%d", *url, i))
		if err != nil {
			log.Fatal(err)
		}
		// Dialled like the pullers' (rtspconn), so the floor reads the
		// socket as cheaply as the server does; -stock keeps gortsplib's.
		c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp,
			OnPacketsLost: func(l uint64) { lost.Add(l) }}
		d := &rtspconn.Dialer{}
		if !*stock {
			c.DialContext = d.DialContext
		}
		if err := c.Start2(); err != nil {
			log.Fatal(err)
		}
		desc, _, err := c.Describe(u)
		if err != nil {
			log.Fatal(err)
		}
		for _, m := range desc.Medias {
			res, err := c.Setup(desc.BaseURL, m, 0, 0)
			if err != nil {
				log.Fatal(err)
			}
			// Like the pullers, the video payloads bypass gortsplib's copy.
			var tap *rtspconn.Tap
			if keep := rtspconn.PrefixFor(m.Formats[0]); keep != nil {
				tap = d.TapSetup(res, keep)
			}
			for _, f := range m.Formats {
				c.OnPacketRTP(m, f, func(pkt *rtp.Packet) {
					if tap != nil {
						tap.Packet(pkt)
					}
					pkts.Add(1)
				})
			}
		}
		if _, err := c.Play(nil); err != nil {
			log.Fatal(err)
		}
		clients = append(clients, c)
	}
	fmt.Println("floor: ready")
	<-ctx.Done()
	for _, c := range clients {
		c.Close()
	}
	fmt.Printf("floor: packets=%d lost=%d at=%s\n", pkts.Load(), lost.Load(), time.Now().Format(time.RFC3339))
}
