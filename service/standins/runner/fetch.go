package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// FetchHeader carries the runner id to the GitLab stand-in's fetch log.
const FetchHeader = "X-Forgebox-Standin-Runner"

// advertisementStart is how every smart-HTTP upload-pack advertisement begins.
const advertisementStart = "001e# service=git-upload-pack\n"

// fetchMain runs inside the job container (copied in as /forgebox-standin/fetch): it does the
// first request of `git fetch` over smart HTTP, `GET <repo>/info/refs?service=git-upload-pack`,
// and exits 0 only on 200 with the right content type and a pkt-line advertisement.
func fetchMain(args []string) int {
	if len(args) != 2 {
		fmt.Println("usage: fetch <info/refs URL> <runner id>")
		return 2
	}
	url, id := args[0], args[1]
	client := &http.Client{Timeout: 15 * time.Second}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Second)
		}
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			fmt.Printf("standin-fetch: %v\n", err)
			return 1
		}
		req.Header.Set(FetchHeader, id)
		req.Header.Set("User-Agent", "git/2.47.2 (forgebox-runner-standin job)")
		req.Header.Set("Git-Protocol", "version=0")
		resp, err := client.Do(req)
		if err != nil {
			lastErr = err // DNS or connect: may be a moment early, try again
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		ct := resp.Header.Get("Content-Type")
		switch {
		case resp.StatusCode != http.StatusOK:
			fmt.Printf("standin-fetch: GET %s: HTTP %d\n", url, resp.StatusCode)
			return 1
		case ct != "application/x-git-upload-pack-advertisement":
			fmt.Printf("standin-fetch: GET %s: content type %q, not application/x-git-upload-pack-advertisement\n", url, ct)
			return 1
		case !strings.HasPrefix(string(body), advertisementStart):
			fmt.Printf("standin-fetch: GET %s: the body is not an upload-pack advertisement\n", url)
			return 1
		}
		fmt.Printf("standin-fetch: GET %s: 200 %s, %d bytes\n", url, ct, len(body))
		return 0
	}
	fmt.Printf("standin-fetch: GET %s: %v\n", url, lastErr)
	return 1
}
