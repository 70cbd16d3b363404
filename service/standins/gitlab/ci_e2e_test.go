package main

// The GitLab stand-in's CI on the real engine: pipelines made through the stand-in-only
// endpoint, the admin API client-go reads, and the runner's job protocol driven by hand (the
// runner stand-in itself runs jobs in the api and cmd tests). Results on a stand-in, not GitLab.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"
)

func rawCall(t *testing.T, method, url string, header map[string]string, body string) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{resp.StatusCode, string(b), resp.Header}
}

type jobPayload struct {
	ID      int64  `json:"id"`
	Token   string `json:"token"`
	JobInfo struct {
		Name  string `json:"name"`
		Stage string `json:"stage"`
	} `json:"job_info"`
	Steps []struct {
		Name   string   `json:"name"`
		Script []string `json:"script"`
	} `json:"steps"`
	Image struct {
		Name string `json:"name"`
	} `json:"image"`
	Variables []struct {
		Key, Value     string
		Public, Masked bool
	} `json:"variables"`
	RunnerInfo struct {
		Timeout int `json:"timeout"`
	} `json:"runner_info"`
}

func TestStandinCI(t *testing.T) {
	cli, im := e2eSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stack := "fbt-standin-ci-" + randHex(4)
	h := &harness{t: t, cli: cli, stack: stack, net: stack}
	t.Cleanup(h.cleanup)
	h.createNetwork(ctx)
	suPass, rolePass := randHex(12), randHex(12)
	_, pgIP := h.start(ctx, spec{name: "postgres", image: im.Postgres, alias: "postgres", env: []string{"POSTGRES_PASSWORD=" + suPass}})
	h.start(ctx, spec{name: "redis", image: im.Redis, alias: "redis"})
	su := connectPG(t, ctx, pgIP, "postgres", suPass, "postgres")
	for _, q := range []string{
		fmt.Sprintf(`CREATE ROLE gitlab LOGIN NOSUPERUSER CREATEDB PASSWORD '%s'`, rolePass),
		`CREATE DATABASE gitlabhq_production OWNER gitlab ENCODING 'UTF8' TEMPLATE template0`,
	} {
		if _, err := su.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	su.Close(ctx)
	suDB := connectPG(t, ctx, pgIP, "postgres", suPass, "gitlabhq_production")
	for _, e := range []string{"pg_trgm", "btree_gist", "amcheck"} {
		if _, err := suDB.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS "+e); err != nil {
			t.Fatal(err)
		}
	}
	suDB.Close(ctx)
	env := sameersbnEnv()
	env["DB_PASS"] = rolePass
	env["GITLAB_MONITORING_IP_WHITELIST"] = h.subnet.String()
	env["FORGEBOX_STANDIN_BOOT_DELAY"] = "1s"
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	glID, glIP := h.start(ctx, spec{name: "gitlab", image: im.GitLab, alias: "gitlab", env: envList})
	base := "http://" + glIP
	// sameersbn's first boot restarts GitLab after gitlab:setup (restart.go): root exists once
	// the restarted supervisord is PID 1.
	h.waitPID1(ctx, glID, "supervisord", 60*time.Second)
	waitHTTP(t, base+"/-/readiness", "", 200, 60*time.Second)
	token := mintToken(t, h.exec(ctx, glID, "git", "bundle", "exec", "rails", "runner", "-e", "production", patScriptFor("forgebox", 300)))
	api := base + "/api/v4"

	newRunner := func(body string) (int64, string) {
		r := call(t, "POST", api+"/user/runners", token, body)
		if r.status != 201 {
			t.Fatalf("create runner: %d %s", r.status, r.body)
		}
		var c struct {
			ID    int64
			Token string
		}
		r.json(t, &c)
		return c.ID, c.Token
	}
	dockerID, dockerTok := newRunner(`{"runner_type":"instance_type","description":"ci-docker","tag_list":["docker"],"run_untagged":false}`)
	_, otherTok := newRunner(`{"runner_type":"instance_type","description":"ci-other","tag_list":["arm64"],"run_untagged":true}`)
	request := func(tok string) (httpResult, *jobPayload) {
		t.Helper()
		r := rawCall(t, "POST", api+"/jobs/request", map[string]string{"Content-Type": "application/json"},
			fmt.Sprintf(`{"token":%q,"info":{"name":"gitlab-runner","executor":"docker"}}`, tok))
		if r.status != 201 {
			return r, nil
		}
		var p jobPayload
		r.json(t, &p)
		return r, &p
	}
	patch := func(job *jobPayload, rng, body string) httpResult {
		t.Helper()
		return rawCall(t, "PATCH", fmt.Sprintf("%s/jobs/%d/trace", api, job.ID),
			map[string]string{"JOB-TOKEN": job.Token, "Content-Range": rng, "Content-Type": "text/plain"}, body)
	}
	put := func(job *jobPayload, body string) httpResult {
		t.Helper()
		return rawCall(t, "PUT", fmt.Sprintf("%s/jobs/%d", api, job.ID), map[string]string{"Content-Type": "application/json"},
			strings.Replace(body, "TOKEN", job.Token, 1))
	}
	admin := func(method, path string) httpResult {
		t.Helper()
		return call(t, method, api+path, token, "")
	}

	// A pipeline from the stand-in's spec: two stages on tag docker, then a manual deploy.
	spec := `{"project":"demo/app","ref":"main","commit_title":"Add the widget","jobs":[
		{"name":"build","stage":"build","tags":["docker"],"script":["echo building","echo 'it''s done'"],"image":"alpine:3.22"},
		{"name":"test","stage":"test","tags":["docker"],"script":["make test"]},
		{"name":"deploy","stage":"deploy","script":["./deploy"],"when":"manual"}]}`
	if r := call(t, "POST", api+"/standin/pipelines", "", spec); r.status != 401 {
		t.Errorf("stand-in pipeline without a token: %d", r.status)
	}
	if r := call(t, "POST", api+"/standin/pipelines", token, `{"project":"demo/app","jobs":[{"name":"x","script":"echo"}]}`); r.status != 400 {
		t.Errorf("a script that is not a list: %d %s", r.status, r.body)
	}
	cr := call(t, "POST", api+"/standin/pipelines", token, spec)
	if cr.status != 201 {
		t.Fatalf("stand-in pipeline: %d %s", cr.status, cr.body)
	}
	var created struct {
		gl.Pipeline
		Project gl.Project `json:"project"`
		Jobs    []gl.Job   `json:"jobs"`
	}
	cr.json(t, &created)
	pid, projectID := created.ID, created.Project.ID
	if created.Status != "pending" || created.Project.PathWithNamespace != "demo/app" || len(created.Jobs) != 3 ||
		created.Jobs[0].Status != "pending" || created.Jobs[1].Status != "created" || created.Jobs[2].Status != "created" {
		t.Fatalf("created pipeline: %s", cr.body)
	}
	buildID, testID, deployID := created.Jobs[0].ID, created.Jobs[1].ID, created.Jobs[2].ID
	pp := fmt.Sprintf("/projects/%d/pipelines/%d", projectID, pid)
	jp := func(id int64) string { return fmt.Sprintf("/projects/%d/jobs/%d", projectID, id) }

	// client-go reads the admin API.
	c, err := gl.NewClient(token, gl.WithBaseURL(api))
	if err != nil {
		t.Fatal(err)
	}
	projects, resp, err := c.Projects.ListProjects(&gl.ListProjectsOptions{OrderBy: gl.Ptr("last_activity_at")})
	if err != nil || len(projects) != 1 || projects[0].PathWithNamespace != "demo/app" || resp.TotalItems != 1 {
		t.Fatalf("projects: %v %+v", err, projects)
	}
	if proj, _, err := c.Projects.GetProject("demo/app", nil); err != nil || proj.ID != projectID {
		t.Errorf("project by path: %v %+v", err, proj)
	}
	pls, _, err := c.Pipelines.ListProjectPipelines("demo/app", &gl.ListProjectPipelinesOptions{})
	if err != nil || len(pls) != 1 || pls[0].ID != pid || pls[0].Ref != "main" {
		t.Fatalf("pipelines by path: %v %+v", err, pls)
	}
	one, _, err := c.Pipelines.GetPipeline(projectID, pid)
	if err != nil || one.User == nil || one.User.Username != "root" || one.Status != "pending" || one.DetailedStatus == nil {
		t.Fatalf("pipeline: %v %+v", err, one)
	}

	// The runner protocol: unknown token, tags that do not match, then the job.
	if r, _ := request("glrt-notarunnertoken000"); r.status != 403 {
		t.Errorf("job request with an unknown token: %d", r.status)
	}
	if r, j := request(otherTok); r.status != 204 || j != nil {
		t.Errorf("runner tagged arm64 got %d %s", r.status, r.body)
	}
	_, build := request(dockerTok)
	if build == nil || build.ID != buildID || !strings.HasPrefix(build.Token, "glcbt-") || build.JobInfo.Name != "build" ||
		build.Image.Name != "alpine:3.22" || len(build.Steps) != 1 || strings.Join(build.Steps[0].Script, "|") != "echo building|echo 'it''s done'" ||
		build.RunnerInfo.Timeout != 3600 {
		t.Fatalf("job payload %+v", build)
	}
	vars := map[string]string{}
	for _, v := range build.Variables {
		vars[v.Key] = v.Value
	}
	if vars["CI_JOB_ID"] != fmt.Sprint(buildID) || vars["CI_PROJECT_PATH"] != "demo/app" || vars["CI_JOB_TOKEN"] != build.Token || vars["CI_COMMIT_TITLE"] != "Add the widget" {
		t.Errorf("variables %v", vars)
	}
	if r, _ := request(dockerTok); r.status != 204 {
		t.Errorf("a second request while test waits for build: %d", r.status)
	}
	// A clone of the (private) project needs HTTP basic gitlab-ci-token and the token of a job
	// that runs (gitlabhq lib/gitlab/auth.rb, build_access_token_check).
	refs := base + "/demo/app.git/info/refs?service=git-upload-pack"
	basic := func(user, pw string) map[string]string {
		return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))}
	}
	for name, h := range map[string]map[string]string{
		"anonymous": nil, "a wrong token": basic("gitlab-ci-token", "glcbt-wrong"),
		"another user": basic("root", build.Token), "a runner token": basic("gitlab-ci-token", dockerTok),
	} {
		if r := rawCall(t, "GET", refs, h, ""); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("clone with %s: %d %q", name, r.status, r.header.Get("WWW-Authenticate"))
		}
	}
	if r := rawCall(t, "GET", refs, basic("gitlab-ci-token", build.Token), ""); r.status != 200 ||
		r.header.Get("Content-Type") != "application/x-git-upload-pack-advertisement" {
		t.Errorf("clone with the running job's token: %d %s", r.status, r.body)
	}
	if r := patch(build, "5-9", "later"); r.status != 416 || r.header.Get("Range") != "0-0" {
		t.Errorf("trace at a wrong offset: %d, Range %q", r.status, r.header.Get("Range"))
	}
	if r := patch(build, "0-5", "hello\n"); r.status != 202 || r.header.Get("Range") != "0-6" || r.header.Get("Job-Status") != "running" {
		t.Errorf("trace: %d %q %q", r.status, r.header.Get("Range"), r.header.Get("Job-Status"))
	}
	if r := rawCall(t, "PATCH", fmt.Sprintf("%s/jobs/%d/trace", api, build.ID), map[string]string{"JOB-TOKEN": "glcbt-wrong", "Content-Range": "6-7"}, "x\n"); r.status != 403 {
		t.Errorf("trace with a wrong job token: %d", r.status)
	}
	if r := patch(build, "6-12", "world!\n"); r.status != 202 || r.header.Get("Range") != "0-13" {
		t.Errorf("trace append: %d %q", r.status, r.header.Get("Range"))
	}
	if r := admin("GET", jp(buildID)+"/trace"); r.status != 200 || r.body != "hello\nworld!\n" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Errorf("trace: %d %q", r.status, r.body)
	}
	if r := put(build, `{"token":"TOKEN","state":"running"}`); r.status != 200 || r.header.Get("Job-Status") != "running" {
		t.Errorf("heartbeat: %d", r.status)
	}
	if r := put(build, `{"token":"TOKEN","state":"success","exit_code":0,"output":{"checksum":"crc32:0","bytesize":13}}`); r.status != 200 {
		t.Fatalf("success: %d %s", r.status, r.body)
	}
	if r := put(build, `{"token":"TOKEN","state":"success"}`); r.status != 403 || r.header.Get("Job-Status") != "success" {
		t.Errorf("update a finished job: %d %q", r.status, r.header.Get("Job-Status"))
	}
	if r := rawCall(t, "GET", refs, basic("gitlab-ci-token", build.Token), ""); r.status != 401 {
		t.Errorf("clone with the token of a finished job: %d", r.status)
	}
	job, _, err := c.Jobs.GetJob(projectID, buildID)
	if err != nil || job.Status != "success" || job.Runner.ID != dockerID || job.Commit == nil || job.Commit.Title != "Add the widget" ||
		job.StartedAt == nil || job.FinishedAt == nil || job.Duration <= 0 || strings.Join(job.TagList, ",") != "docker" {
		t.Fatalf("job after success: %v %+v", err, job)
	}

	// Stage two runs; a cancel reaches the runner as 403 with Job-Status canceled.
	_, test := request(dockerTok)
	if test == nil || test.ID != testID {
		t.Fatalf("second job %+v", test)
	}
	if r := admin("POST", jp(testID)+"/cancel"); r.status != 201 || !strings.Contains(r.body, `"status":"canceled"`) {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if r := patch(test, "0-2", "hi\n"); r.status != 403 || r.header.Get("Job-Status") != "canceled" {
		t.Errorf("trace after cancel: %d %q", r.status, r.header.Get("Job-Status"))
	}
	if r := put(test, `{"token":"TOKEN","state":"failed","exit_code":137}`); r.status != 403 || r.header.Get("Job-Status") != "canceled" {
		t.Errorf("update after cancel: %d %q", r.status, r.header.Get("Job-Status"))
	}
	if r := admin("POST", jp(testID)+"/cancel"); r.status != 422 {
		t.Errorf("cancel a canceled job: %d %s", r.status, r.body)
	}
	if r := admin("POST", jp(deployID)+"/play"); r.status != 400 || !strings.Contains(r.body, "Unplayable Job") {
		t.Errorf("play a skipped job: %d %s", r.status, r.body)
	}
	one, _, _ = c.Pipelines.GetPipeline(projectID, pid)
	jobs, _, _ := c.Jobs.ListPipelineJobs(projectID, pid, &gl.ListJobsOptions{})
	if one.Status != "canceled" || len(jobs) != 3 || jobs[2].Status != "skipped" {
		t.Fatalf("after cancel: pipeline %s, jobs %+v", one.Status, jobs)
	}

	// Retry makes a new try; the later stage waits again; a failure fails the pipeline.
	rr := admin("POST", jp(testID)+"/retry")
	var retried gl.Job
	rr.json(t, &retried)
	if rr.status != 201 || retried.ID == testID || retried.Status != "pending" || retried.Name != "test" {
		t.Fatalf("retry: %d %s", rr.status, rr.body)
	}
	if r := admin("POST", jp(testID)+"/retry"); r.status != 403 || !strings.Contains(r.body, "Job is not retryable") {
		t.Errorf("retry the old try: %d %s", r.status, r.body)
	}
	all, _, _ := c.Jobs.ListPipelineJobs(projectID, pid, &gl.ListJobsOptions{IncludeRetried: gl.Ptr(true)})
	latest, _, _ := c.Jobs.ListPipelineJobs(projectID, pid, &gl.ListJobsOptions{})
	// In creation order, as GitLab lists them: the new try of test comes after deploy.
	if len(all) != 4 || len(latest) != 3 || latest[1].Name != "deploy" || latest[1].Status != "created" || latest[2].ID != retried.ID {
		t.Errorf("jobs with retried %d, latest %+v", len(all), latest)
	}
	_, test2 := request(dockerTok)
	if test2 == nil || test2.ID != retried.ID {
		t.Fatalf("the retry was not given out: %+v", test2)
	}
	if r := put(test2, `{"token":"TOKEN","state":"failed","exit_code":2,"failure_reason":"script_failure"}`); r.status != 200 {
		t.Fatalf("failed: %d", r.status)
	}
	j2, _, _ := c.Jobs.GetJob(projectID, retried.ID)
	one, _, _ = c.Pipelines.GetPipeline(projectID, pid)
	if j2.Status != "failed" || j2.FailureReason != "script_failure" || one.Status != "failed" || one.FinishedAt == nil {
		t.Errorf("after failure: job %s %s, pipeline %s", j2.Status, j2.FailureReason, one.Status)
	}
	if r := admin("POST", pp+"/retry"); r.status != 201 || !strings.Contains(r.body, `"status":"running"`) {
		t.Errorf("retry the pipeline: %d %s", r.status, r.body)
	}
	if r := admin("POST", pp+"/cancel"); r.status != 201 || !strings.Contains(r.body, `"status":"canceled"`) {
		t.Errorf("cancel the pipeline: %d %s", r.status, r.body)
	}

	// A manual job waits to be played; an untagged job no runner takes stays pending (stuck).
	cr = call(t, "POST", api+"/standin/pipelines", token, `{"project":"demo/other","jobs":[
		{"name":"release","stage":"deploy","tags":["docker"],"script":["echo release"],"when":"manual"},
		{"name":"lint","stage":"deploy","script":["echo lint"]}]}`)
	cr.json(t, &created)
	if created.Status != "pending" || created.Jobs[0].Status != "manual" || created.Jobs[1].Status != "pending" {
		t.Fatalf("manual pipeline: %s", cr.body)
	}
	if r, _ := request(dockerTok); r.status != 204 {
		t.Errorf("the docker runner (run_untagged false) took an untagged or manual job: %d %s", r.status, r.body)
	}
	play := call(t, "POST", fmt.Sprintf("%s/projects/%d/jobs/%d/play", api, created.Project.ID, created.Jobs[0].ID), token, "")
	if play.status != 200 || !strings.Contains(play.body, `"status":"pending"`) {
		t.Fatalf("play: %d %s", play.status, play.body)
	}
	if _, rel := request(dockerTok); rel == nil || rel.JobInfo.Name != "release" {
		t.Errorf("the played job was not given out: %+v", rel)
	}
	if _, lint := request(otherTok); lint == nil || lint.JobInfo.Name != "lint" {
		t.Errorf("the untagged job did not go to the run_untagged runner: %+v", lint)
	}
	var runners []map[string]any
	json.Unmarshal([]byte(admin("GET", "/runners/all").body), &runners)
	for _, r := range runners {
		if r["online"] != true {
			t.Errorf("runner %v is not online after asking for jobs", r)
		}
	}
	var list []gl.Project
	if r := admin("GET", "/projects?order_by=id&sort=asc&per_page=1"); r.header.Get("X-Total") != "2" || r.header.Get("X-Next-Page") != "2" {
		t.Errorf("projects pagination: %v", r.header)
	} else {
		r.json(t, &list)
		if len(list) != 1 || list[0].PathWithNamespace != "demo/app" {
			t.Errorf("first project %+v", list)
		}
	}
}
