/*
 * test_service: the service module without a gateway: probe parsing, the
 * stop confirmed by status (stopped, never stopped, cannot tell), a timeout
 * too long for poll's int, TLS and POP3 probes against ports that accept
 * but say nothing or say no, and the probe password file's mode check.
 * Probes that pass against a real TLS and POP3 server are in the e2e tests
 * (t5620, t5630, t5640) against the simulator.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "service.h"
#include "util.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void parse_probes(void **state)
{
	enum service_probe_kind kind;
	char *host = NULL;
	int port = 0;

	(void)state;
	assert_int_equal(service_parse_probe("tls:8450", &kind, &host, &port), SERVICE_PROBE_TLS);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8450);
	free(host);
	assert_int_equal(service_parse_probe("pop3:[::1]:110", &kind, &host, &port),
			 SERVICE_PROBE_POP3);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 110);
	free(host);
	assert_int_equal(service_parse_probe("tcp:h:1", &kind, &host, &port), SERVICE_PROBE_TCP);
	free(host);
	assert_int_equal(service_parse_probe("/bin/check", &kind, &host, &port),
			 SERVICE_PROBE_COMMAND);
	assert_null(host);
	assert_int_equal(service_parse_probe("tls:0", &kind, &host, &port), MSGW_ECONFIG);
	assert_string_equal(err_last(), "bad health check 'tls:0': expected tls:PORT or "
					"tls:HOST:PORT");
	assert_int_equal(service_parse_probe("pop3::110", &kind, &host, &port), MSGW_ECONFIG);
	assert_int_equal(service_parse_probe("pop3:h:70000", &kind, &host, &port), MSGW_ECONFIG);
}

static void stop_confirmed_by_status(void **state)
{
	struct service_host *h = NULL;

	(void)state;
	assert_int_equal(service_host_local(&h), 0);
	assert_int_equal(service_stop(h, "true", "exit 3", 5), 0);
	assert_int_equal(service_stop(h, "true", NULL, 5), 0);
	assert_int_equal(service_stop(h, "true", "true", 1), MSGW_ERR);
	assert_string_equal(err_last(), "stop: 'true' exited 0 but status 'true' still reports the "
					"service running after 1 s");
	assert_int_equal(service_stop(h, "true", "exit 127", 1), MSGW_ERR);
	assert_non_null(strstr(err_last(), "could not tell whether the service runs"));
	assert_int_equal(service_stop(h, "exit 1", "exit 3", 1), MSGW_ERR);
	assert_non_null(strstr(err_last(), "exited with status 1"));
	assert_int_equal(service_start(h, "true", "true", 5), 0);
	assert_int_equal(service_start(h, "true", "exit 3", 1), MSGW_ERR);
	assert_non_null(strstr(err_last(), "still reports the service stopped"));
	assert_int_equal(service_is_running(h, "true", 5), 1);
	assert_int_equal(service_is_running(h, "exit 3", 5), 0);
	assert_int_equal(service_is_running(h, "exit 127", 5), 0);
	assert_int_equal(service_is_running(h, NULL, 5), 0);
	service_host_free(h);
}

/* issue 13: a timeout whose milliseconds do not fit in an int */
static void long_timeout(void **state)
{
	struct service_host *h = NULL;
	struct service_result r;

	(void)state;
	assert_int_equal(service_host_local(&h), 0);
	assert_int_equal(service_run(h, "echo ok", INT_MAX, &r), 0);
	assert_false(r.timed_out);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "ok\n");
	service_result_release(&r);
	service_host_free(h);
}

/* A listening socket on 127.0.0.1 that never accepts: TCP connects, and
 * nothing is ever said. */
static int silent_port(int *port_out)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port_out = ntohs(a.sin_port);
	return fd;
}

static void probes_fail_on_silence(void **state)
{
	struct service_host *h = NULL;
	char why[512];
	int port, fd = silent_port(&port);
	int64_t t0;

	(void)state;
	assert_int_equal(service_host_local(&h), 0);
	assert_int_equal(h->ops->tcp_probe(h->ctx, "127.0.0.1", port, 1000), 0);
	t0 = time_now_ms();
	assert_int_equal(service_probe_tls(h, "127.0.0.1", port, 500, why, sizeof(why)), MSGW_ERR);
	assert_true(time_now_ms() - t0 < 3000);
	assert_non_null(strstr(why, "TLS handshake with 127.0.0.1:"));
	assert_non_null(strstr(why, "no answer"));
	assert_int_equal(service_probe_pop3(h, "127.0.0.1", port, 500, NULL, why, sizeof(why)),
			 MSGW_ERR);
	assert_string_equal(why, "POP3 no greeting: no answer (closed or timed out)");
	close(fd);
	service_host_free(h);
}

/* A POP3 server that greets and refuses STLS, in a child process. */
static void probe_pop3_refused(void **state)
{
	struct service_host *h = NULL;
	char why[512];
	int port, fd = silent_port(&port);
	pid_t pid = fork();

	(void)state;
	if (pid == 0) {
		int c = accept(fd, NULL, NULL);
		char buf[64];

		if (write(c, "+OK hi\r\n", 8) < 0 || read(c, buf, sizeof(buf)) < 0 ||
		    write(c, "-ERR no TLS here\r\n", 18) < 0)
			_exit(1);
		_exit(0);
	}
	assert_int_equal(service_host_local(&h), 0);
	assert_int_equal(service_probe_pop3(h, "127.0.0.1", port, 2000, NULL, why, sizeof(why)),
			 MSGW_ERR);
	assert_string_equal(why, "POP3 STLS refused: '-ERR no TLS here'");
	waitpid(pid, NULL, 0);
	close(fd);
	service_host_free(h);
}

static void password_file_mode(void **state)
{
	struct config_gateway gw = {0};
	struct service_host *h = NULL;
	char path[] = "/tmp/test_service_pw.XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "secret\n", 7), 7);
	close(fd);
	chmod(path, 0640);
	gw.name = "g";
	gw.health = "pop3:1";
	gw.timeout = 1;
	gw.probe_mailbox = "mbx-00000000000000000000000000000000";
	gw.probe_password_file = path;
	assert_int_equal(service_host_local(&h), 0);
	assert_int_equal(service_health_gateway(h, &gw), MSGW_ECONFIG);
	assert_non_null(strstr(err_last(), "is readable by others: run 'chmod 600 "));
	assert_null(strstr(err_last(), "secret"));
	chmod(path, 0600);
	/* readable now: the check runs (and fails: nothing on port 1), and the
	 * password is in no message */
	assert_int_equal(service_health_gateway(h, &gw), MSGW_EHEALTH);
	assert_null(strstr(err_last(), "secret"));
	unlink(path);
	service_host_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse_probes),	  cmocka_unit_test(stop_confirmed_by_status),
	    cmocka_unit_test(long_timeout),	  cmocka_unit_test(probes_fail_on_silence),
	    cmocka_unit_test(probe_pop3_refused), cmocka_unit_test(password_file_mode),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
