package engine

import (
	"bytes"
	"context"
	"fmt"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// ExecResult is what a command run inside a container printed, and how it ended.
type ExecResult struct {
	Stdout   string
	Stderr   string
	ExitCode int
}

// Exec runs cmd inside a running container as user (empty: the image's user) and waits for it.
// The command's output can hold secrets (a freshly minted token): callers must not log it.
func (c *Client) Exec(ctx context.Context, id, user string, cmd []string) (ExecResult, error) {
	c.calls.add()
	created, err := c.api.ContainerExecCreate(ctx, id, container.ExecOptions{
		User: user, Cmd: cmd, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec in container %s: %w", id, err)
	}
	c.calls.add()
	att, err := c.api.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return ExecResult{}, fmt.Errorf("attach to exec in container %s: %w", id, err)
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		return ExecResult{}, fmt.Errorf("read exec output in container %s: %w", id, err)
	}
	c.calls.add()
	insp, err := c.api.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		return ExecResult{}, fmt.Errorf("inspect exec in container %s: %w", id, err)
	}
	return ExecResult{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: insp.ExitCode}, nil
}
