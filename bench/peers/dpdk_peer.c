/* DPDK peer: the same frames through DPDK's own checksum, GSO and GRO code.
 *
 *   dpdk_peer <op> <workload> <size> <pcap> <burst> [mss]
 *
 * EAL starts without hugepages or devices (--no-huge --no-pci -m 512 --no-shconf
 * --no-telemetry); mbufs come from ordinary memory. Two forms per op:
 *
 *  "dpdk-bare": what DPDK does by itself. rte_raw_cksum; rte_ipv4_udptcp_cksum_verify;
 *      rte_gso_segment (output: chains of a header mbuf + an indirect mbuf pointing
 *      into the input, zero-copy, no checksums); rte_gro_reassemble_burst /
 *      rte_gro_reassemble (output: mbuf chains, zero-copy, checksums neither
 *      verified nor recomputed).
 *  "dpdk-full": DPDK doing our work: flat frames in one output arena, IPv4 header
 *      and TCP/UDP checksums written (GSO, GRO), input checksums verified (GRO).
 *
 * Not timed: copying the frames into mbufs before each repetition (with l2/l3/l4_len,
 * packet_type and TX flags set, the parsing a PMD or the application does), freeing
 * mbufs after it. Timed: everything between (one clock read per repetition).
 */
#define ALLOW_EXPERIMENTAL_API 1
#include <unistd.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_version.h>
#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_gro.h>
#include <rte_gso.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "common.h"

#define MAX_FRAMES 8192
#define MAX_OUT 256

static struct frames F;
static struct rte_mempool *big_pool, *small_pool, *direct_pool, *indirect_pool;
static struct rte_mbuf *in[MAX_FRAMES];
static uint8_t *arena;
static size_t arena_size;
static volatile uint64_t sink;
static const char *g_op;
static int g_burst;
static uint32_t g_mss;

static void die(const char *what)
{
	fprintf(stderr, "dpdk_peer: %s: %s\n", what, rte_strerror(rte_errno));
	exit(1);
}

/* Copy every frame into a fresh mbuf with lengths, packet type and offload flags set
 * the way a PMD and a TSO-requesting application would. */
static void load_mbufs(void)
{
	for (uint32_t i = 0; i < F.n; i++) {
		struct rte_mempool *mp = F.len[i] > 2048 ? big_pool : small_pool;
		struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
		if (!m) die("mbuf alloc");
		char *d = rte_pktmbuf_append(m, F.len[i]);
		if (!d) die("mbuf append");
		memcpy(d, F.data[i], F.len[i]);
		uint16_t et = ((uint16_t)F.data[i][12] << 8) | F.data[i][13];
		int v6 = et == RTE_ETHER_TYPE_IPV6;
		uint8_t *ip = F.data[i] + 14;
		uint8_t proto = v6 ? ip[6] : ip[9];
		m->l2_len = 14;
		m->l3_len = v6 ? 40 : (ip[0] & 15) * 4;
		m->l4_len = proto == IPPROTO_TCP ? (ip[m->l3_len + 12] >> 4) * 4 : 8;
		m->packet_type = RTE_PTYPE_L2_ETHER | (v6 ? RTE_PTYPE_L3_IPV6 : RTE_PTYPE_L3_IPV4) |
				 (proto == IPPROTO_TCP ? RTE_PTYPE_L4_TCP : RTE_PTYPE_L4_UDP);
		m->ol_flags = 0;
		in[i] = m;
	}
}

static void free_mbufs(struct rte_mbuf **m, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		rte_pktmbuf_free(m[i]);
}

/* Flatten an mbuf chain into the arena; returns the frame start. */
static inline uint8_t *flatten(struct rte_mbuf *m, size_t *w, uint32_t *len)
{
	uint8_t *o = arena + *w;
	uint32_t n = 0;
	for (struct rte_mbuf *s = m; s; s = s->next) {
		rte_memcpy(o + n, rte_pktmbuf_mtod(s, void *), s->data_len);
		n += s->data_len;
	}
	*len = n;
	record(o - arena, n);
	*w += (n + 63) & ~(size_t)63;
	return o;
}

/* IPv4 header checksum and full L4 checksum of a flat frame, written in place. */
static inline void write_csums(uint8_t *f)
{
	uint16_t et = ((uint16_t)f[12] << 8) | f[13];
	if (et == RTE_ETHER_TYPE_IPV4) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(f + 14);
		uint8_t *l4 = (uint8_t *)ip + rte_ipv4_hdr_len(ip);
		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		if (ip->next_proto_id == IPPROTO_TCP) {
			((struct rte_tcp_hdr *)l4)->cksum = 0;
			((struct rte_tcp_hdr *)l4)->cksum = rte_ipv4_udptcp_cksum(ip, l4);
		} else if (ip->next_proto_id == IPPROTO_UDP &&
			   !(rte_be_to_cpu_16(ip->fragment_offset) & 0x3FFF)) {
			((struct rte_udp_hdr *)l4)->dgram_cksum = 0;
			((struct rte_udp_hdr *)l4)->dgram_cksum = rte_ipv4_udptcp_cksum(ip, l4);
		}
	} else {
		struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)(f + 14);
		struct rte_tcp_hdr *t = (struct rte_tcp_hdr *)(ip + 1);
		t->cksum = 0;
		t->cksum = rte_ipv6_udptcp_cksum(ip, t);
	}
}

static inline int verify_frame(const uint8_t *f)
{
	uint16_t et = ((uint16_t)f[12] << 8) | f[13];
	if (et == RTE_ETHER_TYPE_IPV4) {
		const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(f + 14);
		if (rte_ipv4_cksum(ip) != 0) return 0;  /* sum over a valid header folds to 0xffff */
		return rte_ipv4_udptcp_cksum_verify(ip, (const uint8_t *)ip + rte_ipv4_hdr_len(ip)) == 0;
	}
	const struct rte_ipv6_hdr *ip = (const struct rte_ipv6_hdr *)(f + 14);
	return rte_ipv6_udptcp_cksum_verify(ip, ip + 1) == 0;
}

/* ---- timed bodies: each processes the whole workload once, returns input units ---- */

static uint32_t body_raw(void)
{
	uint64_t s = 0;
	for (uint32_t i = 0; i < F.n; i++)
		s += rte_raw_cksum(F.data[i], F.len[i]);
	sink += s;
	return F.n;
}

static uint32_t body_verify(void)
{
	uint32_t ok = 0;
	for (uint32_t i = 0; i < F.n; i++)
		ok += verify_frame(F.data[i]);
	if (ok != F.n) { fprintf(stderr, "dpdk_peer: %u frames failed verification\n", F.n - ok); exit(1); }
	return F.n;
}

static uint32_t body_fill(void)
{
	for (uint32_t i = 0; i < F.n; i++)
		write_csums(F.data[i]);
	return F.n;
}

/* Completion of CHECKSUM_PARTIAL frames the DPDK way: rte_raw_cksum from the L4 header
 * (its checksum field holds the pseudo-header sum) to the end, inverted, stored. */
static uint32_t body_complete(void)
{
	for (uint32_t i = 0; i < F.n; i++) {
		uint8_t *l4 = F.data[i] + 34;
		uint16_t v = ~rte_raw_cksum(l4, F.len[i] - 34);
		((struct rte_tcp_hdr *)l4)->cksum = v ? v : 0xFFFF;
	}
	return F.n;
}

static struct rte_gso_ctx gso_ctx;
static struct rte_mbuf *gso_out[MAX_FRAMES][64];
static int gso_nout[MAX_FRAMES];
static uint64_t g_out_units;

static uint32_t body_gso(int full)
{
	size_t w = 0;
	rec_n = 0;
	uint64_t segs = 0;
	for (uint32_t i = 0; i < F.n; i++) {
		struct rte_mbuf *m = in[i];
		m->ol_flags = !strcmp(g_op, "uso4") ? (RTE_MBUF_F_TX_UDP_SEG | RTE_MBUF_F_TX_IPV4)
			    : !strcmp(g_op, "gso6") ? (RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV6)
						    : (RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4);
		if (full && g_op[0] == 'u') {
			/* UFO: the UDP checksum covers the whole datagram, so it is computed on the
			 * super-datagram before it is cut into IP fragments */
			struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, 14);
			struct rte_udp_hdr *u = (struct rte_udp_hdr *)((uint8_t *)ip + rte_ipv4_hdr_len(ip));
			u->dgram_cksum = 0;
			u->dgram_cksum = rte_ipv4_udptcp_cksum(ip, u);
		}
		int n = rte_gso_segment(m, &gso_ctx, gso_out[i], 64);
		if (n <= 0) { fprintf(stderr, "dpdk_peer: rte_gso_segment returned %d\n", n); exit(1); }
		gso_nout[i] = n;
		segs += n;
		if (full)
			for (int k = 0; k < n; k++) {
				uint32_t len;
				uint8_t *f = flatten(gso_out[i][k], &w, &len);
				write_csums(f);
			}
	}
	g_out_units = segs;
	return F.n;
}

static void gso_cleanup(void)
{
	for (uint32_t i = 0; i < F.n; i++)
		free_mbufs(gso_out[i], gso_nout[i]);
}

static void *gro_ctx;
static struct rte_mbuf *gro_pkts[MAX_FRAMES];
static uint32_t gro_nout;

/* Burst form: each burst is merged on its own (rte_gro_reassemble_burst holds at most
 * RTE_GRO_MAX_BURST_ITEM_NUM = 128 items, so bursts of 256 are passed as 128s).
 * Table form (ctx): one table across bursts, flushed at the end. */
static uint32_t body_gro(int full, int use_ctx)
{
	uint32_t outn = 0;
	if (full) {
		uint32_t ok = 0;
		for (uint32_t i = 0; i < F.n; i++)
			ok += verify_frame(rte_pktmbuf_mtod(in[i], uint8_t *));
		if (ok != F.n) { fprintf(stderr, "dpdk_peer: %u frames failed verification\n", F.n - ok); exit(1); }
	}
	if (!use_ctx) {
		struct rte_gro_param p = { .gro_types = RTE_GRO_TCP_IPV4, .max_flow_num = 128,
					   .max_item_per_flow = 128, .socket_id = 0 };
		for (uint32_t b = 0; b < F.n; b += g_burst) {
			uint32_t bn = F.n - b < (uint32_t)g_burst ? F.n - b : (uint32_t)g_burst;
			for (uint32_t c = 0; c < bn; c += RTE_GRO_MAX_BURST_ITEM_NUM) {
				uint32_t cn = bn - c < RTE_GRO_MAX_BURST_ITEM_NUM ? bn - c : RTE_GRO_MAX_BURST_ITEM_NUM;
				memcpy(&gro_pkts[outn], &in[b + c], cn * sizeof(in[0]));
				outn += rte_gro_reassemble_burst(&gro_pkts[outn], cn, &p);
			}
		}
	} else {
		for (uint32_t b = 0; b < F.n; b += g_burst) {
			uint32_t bn = F.n - b < (uint32_t)g_burst ? F.n - b : (uint32_t)g_burst;
			memcpy(&gro_pkts[outn], &in[b], bn * sizeof(in[0]));
			outn += rte_gro_reassemble(&gro_pkts[outn], bn, gro_ctx);
		}
		outn += rte_gro_timeout_flush(gro_ctx, 0, RTE_GRO_TCP_IPV4, &gro_pkts[outn], MAX_FRAMES - outn);
	}
	if (full) {
		size_t w = 0;
		rec_n = 0;
		for (uint32_t i = 0; i < outn; i++) {
			uint32_t len;
			uint8_t *f = flatten(gro_pkts[i], &w, &len);
			write_csums(f);
		}
	}
	gro_nout = outn;
	g_out_units = outn;
	return F.n;
}

/* ---- the timing loop: repetitions of (untimed set-up, timed body, untimed clean-up) ---- */

enum kind { K_RAW, K_VERIFY, K_FILL, K_GSO, K_GRO, K_COMPLETE };

static double one_rep(enum kind k, int full, int use_ctx, uint64_t iters, uint32_t *units)
{
	uint64_t t = 0;
	for (uint64_t it = 0; it < iters; it++) {
		if (k == K_GSO || k == K_GRO) load_mbufs();
		uint64_t t0 = now_ns();
		switch (k) {
		case K_RAW: *units = body_raw(); break;
		case K_VERIFY: *units = body_verify(); break;
		case K_FILL: *units = body_fill(); break;
		case K_COMPLETE: *units = body_complete(); break;
		case K_GSO: *units = body_gso(full); break;
		case K_GRO: *units = body_gro(full, use_ctx); break;
		}
		t += now_ns() - t0;
		if (k == K_GSO) { gso_cleanup(); free_mbufs(in, F.n); }
		if (k == K_GRO) free_mbufs(gro_pkts, gro_nout);
	}
	return (double)t;
}

static void run(struct result *r, enum kind k, int full, int use_ctx)
{
	uint32_t units = 0;
	one_rep(k, full, use_ctx, 1, &units);  /* warm-up */
	double one = one_rep(k, full, use_ctx, 1, &units);
	uint64_t iters = one > 0 ? (uint64_t)(g_min_ns / one) + 1 : 100;
	for (int rep = 0; rep < r->reps; rep++)
		r->ns[rep] = one_rep(k, full, use_ctx, iters, &units) / (double)(iters * units);
	r->pkts_per_rep = iters * units;
	r->extra = (double)g_out_units / units;
	emit(r);
	if (k == K_GSO) {  /* the same run, per output segment */
		const char *u = r->unit;
		r->unit = "seg";
		for (int i = 0; i < r->reps; i++)
			r->ns[i] *= (double)units / g_out_units;
		emit(r);
		r->unit = u;
	}
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: dpdk_peer <op> <workload> <size> <pcap> <burst> [mss]\n");
		return 2;
	}
	parse_env();
	g_op = argv[1];
	g_burst = atoi(argv[5]);
	g_mss = argc > 6 ? atoi(argv[6]) : 1448;
	if (g_burst < 1) g_burst = 32;
	if (load_pcap(argv[4], &F)) return 1;
	if (F.n > MAX_FRAMES) { fprintf(stderr, "dpdk_peer: too many frames\n"); return 1; }
	for (uint32_t i = 0; i < F.n; i++)
		if (F.len[i] > 65535 - RTE_PKTMBUF_HEADROOM && (!strncmp(argv[1], "gso", 3) || !strcmp(argv[1], "gro4"))) {
			printf("{\"peer\":\"dpdk\",\"op\":\"%s\",\"workload\":\"%s\",\"skipped\":"
			       "\"a %u-byte frame does not fit one mbuf (16-bit data_len) and DPDK GSO has no BIG TCP\"}\n",
			       argv[1], argv[2], F.len[i]);
			return 0;
		}

	char prefix[64];
	snprintf(prefix, sizeof(prefix), "--file-prefix=offbench%d", (int)getpid());
	char *eal[] = { "dpdk_peer", "--no-huge", "--no-pci", "-m", "512", "--no-shconf",
			"--no-telemetry", "--log-level=lib.eal:error", "-l", "0", prefix, NULL };
	if (rte_eal_init(11, eal) < 0) die("rte_eal_init");

	big_pool = rte_pktmbuf_pool_create("big", 64, 0, 0, 65535, SOCKET_ID_ANY);
	small_pool = rte_pktmbuf_pool_create("small", MAX_FRAMES * 2, 256, 0,
					     RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	direct_pool = rte_pktmbuf_pool_create("direct", 8192, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					      SOCKET_ID_ANY);
	indirect_pool = rte_pktmbuf_pool_create("indirect", 8192, 256, 0, 0, SOCKET_ID_ANY);
	if (!big_pool || !small_pool || !direct_pool || !indirect_pool) die("mempool");
	arena_size = F.total * 2 + (size_t)MAX_FRAMES * 128 + (1 << 20);
	arena = aligned_alloc(64, (arena_size + 63) & ~(size_t)63);
	memset(arena, 0, arena_size);

	struct result r = { .peer = "dpdk", .workload = argv[2], .op = g_op, .size = atoi(argv[3]),
			    .fnv = F.fnv, .reps = g_reps, .unit = "pkt" };
	if (!strcmp(g_op, "raw")) {
		r.impl = "dpdk-bare";
		r.notes = "rte_raw_cksum over each span";
		run(&r, K_RAW, 0, 0);
	} else if (!strncmp(g_op, "verify", 6)) {
		r.impl = "dpdk-full";
		r.notes = "rte_ipv4_cksum (v4) + rte_ipv4/ipv6_udptcp_cksum_verify per frame, verdict checked";
		run(&r, K_VERIFY, 0, 0);
	} else if (!strncmp(g_op, "fill", 4)) {
		r.impl = "dpdk-full";
		r.notes = "rte_ipv4_cksum + rte_ipv4/ipv6_udptcp_cksum computed and written in place";
		run(&r, K_FILL, 0, 0);
	} else if (!strcmp(g_op, "complete4")) {
		r.impl = "dpdk-full";
		r.notes = "rte_raw_cksum from the L4 header to the end (field holds the pseudo-header sum), inverted sum written";
		run(&r, K_COMPLETE, 0, 0);
	} else if (!strcmp(g_op, "gso4") || !strcmp(g_op, "gso6") || !strcmp(g_op, "uso4")) {
		int udp = !strcmp(g_op, "uso4");
		uint32_t hdr = 14 + (g_op[3] == '6' ? 40 : 20) + (udp ? 8 : 32);
		gso_ctx.direct_pool = direct_pool;
		gso_ctx.indirect_pool = indirect_pool;
		gso_ctx.flag = 0;
		gso_ctx.gso_types = udp ? RTE_ETH_TX_OFFLOAD_UDP_TSO : RTE_ETH_TX_OFFLOAD_TCP_TSO;
		/* gso_size counts the whole segment; UDP/IPv4 is IP-fragmented (payload per
		 * fragment a multiple of 8), so give it the same IP MTU as the USO datagrams */
		gso_ctx.gso_size = udp ? (uint16_t)(14 + 20 + 8 + g_mss) : (uint16_t)(hdr + g_mss);
		load_mbufs();
		struct rte_mbuf *probe[64];
		in[0]->ol_flags = udp ? (RTE_MBUF_F_TX_UDP_SEG | RTE_MBUF_F_TX_IPV4)
			: g_op[3] == '6' ? (RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV6)
					 : (RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4);
		int n = rte_gso_segment(in[0], &gso_ctx, probe, 64);
		if (n > 0) free_mbufs(probe, n);
		free_mbufs(in, F.n);
		if (n <= 0) {
			printf("{\"peer\":\"dpdk\",\"op\":\"%s\",\"workload\":\"%s\",\"skipped\":"
			       "\"rte_gso_segment returned %d: %s has no GSO for this packet type (22.11: TCP/IPv4, UDP/IPv4 fragmentation and tunnels only)\"}\n",
			       g_op, argv[2], n, rte_version());
			return 0;
		}
		r.impl = "dpdk-bare";
		r.notes = udp ? "rte_gso_segment UDP/IPv4 = IP fragmentation (not USO): header mbuf + indirect payload mbuf, zero-copy, no checksums"
			      : "rte_gso_segment: header mbuf + indirect payload mbuf per segment, zero-copy, checksums not written";
		run(&r, K_GSO, 0, 0);
		r.impl = "dpdk-full";
		r.notes = udp ? "UDP checksum of the whole datagram (rte_ipv4_udptcp_cksum), rte_gso_segment (IP fragments), each fragment copied flat, IPv4 header checksums written"
			      : "rte_gso_segment, then each segment copied flat and IPv4 + TCP checksums written (rte_ipv4_cksum, rte_ipv*_udptcp_cksum)";
		run(&r, K_GSO, 1, 0);
		dump_records(arena, r.impl);
	} else if (!strcmp(g_op, "gro4")) {
		struct rte_gro_param p = { .gro_types = RTE_GRO_TCP_IPV4, .max_flow_num = 1024,
					   .max_item_per_flow = 64, .socket_id = 0 };
		gro_ctx = rte_gro_ctx_create(&p);
		if (!gro_ctx) die("rte_gro_ctx_create");
		r.impl = "dpdk-bare";
		r.notes = "rte_gro_reassemble_burst per burst (<=128 items a call): mbuf chains, zero-copy, checksums not verified or written";
		run(&r, K_GRO, 0, 0);
		r.impl = "dpdk-table-bare";
		r.notes = "rte_gro_reassemble into one table across bursts (1024 flows x 64), flushed at the end; zero-copy, no checksums";
		run(&r, K_GRO, 0, 1);
		r.impl = "dpdk-full";
		r.notes = "IPv4+TCP checksums of every input verified, rte_gro_reassemble_burst, merged chains copied flat, IPv4+TCP checksums written";
		run(&r, K_GRO, 1, 0);
		dump_records(arena, r.impl);
		r.impl = "dpdk-table-full";
		r.notes = "as dpdk-full with the table form (rte_gro_reassemble + rte_gro_timeout_flush)";
		run(&r, K_GRO, 1, 1);
		dump_records(arena, r.impl);
	} else {
		printf("{\"peer\":\"dpdk\",\"op\":\"%s\",\"workload\":\"%s\",\"skipped\":\"no DPDK form of this op\"}\n",
		       g_op, argv[2]);
	}
	rte_eal_cleanup();
	return 0;
}
