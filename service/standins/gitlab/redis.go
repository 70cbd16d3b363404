package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// respCommand encodes a Redis command as a RESP array of bulk strings.
func respCommand(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// redisError is an error reply from Redis: an answer, so not worth retrying.
type redisError struct{ msg string }

func (e *redisError) Error() string { return "Redis answered " + e.msg }

// redisPing sends PING (after AUTH when a password is set) over plain TCP and wants +PONG.
func redisPing(ctx context.Context, c Config) error {
	addr := net.JoinHostPort(c.RedisHost, strconv.Itoa(c.RedisPort))
	d := net.Dialer{Timeout: 3 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(conn)
	if c.RedisPassword != "" {
		if _, err := conn.Write([]byte(respCommand("AUTH", c.RedisPassword))); err != nil {
			return err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "+OK") {
			return &redisError{strings.TrimSpace(line)}
		}
	}
	if _, err := conn.Write([]byte(respCommand("PING"))); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return &redisError{strings.TrimSpace(line)}
	}
	return nil
}

// redisWait pings Redis for up to wait, like the entrypoint's `redis-cli ping` loop.
func redisWait(ctx context.Context, c Config, wait time.Duration, logf func(string, ...any)) error {
	deadline := time.Now().Add(wait)
	for attempt := 1; ; attempt++ {
		err := redisPing(ctx, c)
		if err == nil {
			return nil
		}
		if _, answered := err.(*redisError); answered || time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("Redis at %s does not answer PING: %v", net.JoinHostPort(c.RedisHost, strconv.Itoa(c.RedisPort)), err)
		}
		if attempt == 1 || attempt%5 == 0 {
			logf("waiting for Redis at %s: %v", net.JoinHostPort(c.RedisHost, strconv.Itoa(c.RedisPort)), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
