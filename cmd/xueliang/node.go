package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"text/tabwriter"
	"time"

	"xueliang/cmd/xueliang/internal/api"
)

const nodeUsage = `usage: xueliang node <command> [flags]

  xueliang node list                 the cluster's nodes (load, liveness, draining)
  xueliang node drain [--undrain] NODE
                                     drain a node (admin; audited): it stops its
                                     pullers, releases its cameras to the other
                                     nodes and claims none; --undrain ends it

flags:
  --server URL         API base URL of any node (default $XUELIANG_SERVER or http://127.0.0.1:8080)
  --token-file F       read the bearer token from F (default $XUELIANG_TOKEN)
`

func runNode(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "drain") {
		fmt.Fprint(stderr, nodeUsage)
		return 2
	}
	fs := flag.NewFlagSet("node "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, nodeUsage) }
	server, token := serverFlags(fs)
	undrain := fs.Bool("undrain", false, "end the drain")
	rest, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := newAPIClient(*server, *token)
	switch args[0] {
	case "list":
		var out api.NodeList
		if err := c.do(ctx, http.MethodGet, "/api/v1/nodes", nil, &out); err != nil {
			fmt.Fprintf(stderr, "xueliang node list: %v\n", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tLIVE\tDRAINING\tCAMERAS\tCAPACITY\tWEIGHT\tVERSION\tADVERTISE\tHEARTBEAT")
		for _, n := range out.Nodes {
			fmt.Fprintf(tw, "%s\t%t\t%t\t%d\t%d\t%g\t%s\t%s\t%s\n", n.ID, n.Live, n.Draining, n.Cameras, n.Capacity, n.Weight,
				n.Version, n.AdvertiseURL, n.Heartbeat.Format(time.RFC3339))
		}
		tw.Flush()
		return 0
	default:
		if len(rest) != 1 {
			fmt.Fprintf(stderr, "xueliang node drain: want exactly one NODE\n\n%s", nodeUsage)
			return 2
		}
		body := map[string]bool{"draining": !*undrain}
		if err := c.do(ctx, http.MethodPut, "/api/v1/nodes/"+url.PathEscape(rest[0])+"/drain", body, nil); err != nil {
			fmt.Fprintf(stderr, "xueliang node drain: %v\n", err)
			return 1
		}
		if *undrain {
			fmt.Fprintf(stdout, "node %s undrained: it claims cameras again\n", rest[0])
		} else {
			fmt.Fprintf(stdout, "node %s draining: its cameras move to the other nodes within a lease round\n", rest[0])
		}
		return 0
	}
}
