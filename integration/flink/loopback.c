// loopback.c: an LD_PRELOAD library for the JVMs the integration scripts
// start (settings.sh builds it). A bind() to the wildcard address,
// 0.0.0.0 or ::, binds to the loopback address instead, so that nothing
// these scripts start listens beyond 127.0.0.1 whatever a service does with
// its host settings. Beam 2.62's job server needs it: it builds its job
// and artifact servers from the port alone and listens on every interface,
// whatever --job-host says.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
	static bind_fn real;
	if (!real) {
		real = (bind_fn)dlsym(RTLD_NEXT, "bind");
	}
	if (addr != NULL && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in in;
		memcpy(&in, addr, sizeof in);
		if (in.sin_addr.s_addr == htonl(INADDR_ANY)) {
			in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			return real(fd, (const struct sockaddr *)&in, sizeof in);
		}
	} else if (addr != NULL && addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 in6;
		memcpy(&in6, addr, sizeof in6);
		if (IN6_IS_ADDR_UNSPECIFIED(&in6.sin6_addr)) {
			// ::ffff:127.0.0.1, so that clients of 127.0.0.1 reach it
			// and nothing else does.
			static const unsigned char mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
			memcpy(&in6.sin6_addr, mapped, sizeof mapped);
			return real(fd, (const struct sockaddr *)&in6, sizeof in6);
		}
	}
	return real(fd, addr, len);
}
