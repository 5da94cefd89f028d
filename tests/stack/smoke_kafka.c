/* smoke_kafka.c - proves real Kafka traffic through the local stack with
 * librdkafka: an idempotent acks=all producer writes N keyed messages to a
 * fresh topic, a consumer-group member reads exactly them back and commits. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stack_env.h"

#define N 1000

static int delivered, failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    if (m->err)
        failed++;
    else
        delivered++;
}

static rd_kafka_conf_t *conf_new(const char *brokers)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return c;
}

static void set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[256];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err)) {
        fprintf(stderr, "%s=%s: %s\n", k, v, err);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: smoke_kafka TOPIC (an existing, empty topic)\n");
        return 2;
    }
    const char *topic = argv[1];
    char brokers[64], err[256];
    snprintf(brokers, sizeof brokers, "127.0.0.1:%d", STACK_KAFKA_PORT());

    rd_kafka_conf_t *pc = conf_new(brokers);
    set(pc, "enable.idempotence", "true");
    set(pc, "acks", "all");
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
    if (!p) {
        fprintf(stderr, "producer: %s\n", err);
        return 1;
    }
    for (int i = 0; i < N; i++) {
        char key[16], val[32];
        snprintf(key, sizeof key, "dev-%d", i % 7);
        snprintf(val, sizeof val, "reading-%d", i);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE(val, strlen(val)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (e) {
            fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
            return 1;
        }
        rd_kafka_poll(p, 0);
    }
    rd_kafka_flush(p, 30000);
    rd_kafka_destroy(p);
    printf("produced: delivered=%d failed=%d\n", delivered, failed);
    if (delivered != N || failed)
        return 1;

    rd_kafka_conf_t *cc = conf_new(brokers);
    char group[64];
    snprintf(group, sizeof group, "tern-smoke-%d", (int)getpid());
    set(cc, "group.id", group);
    set(cc, "auto.offset.reset", "earliest");
    set(cc, "enable.auto.commit", "false");
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err);
    if (!c) {
        fprintf(stderr, "consumer: %s\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(c, sub);
    rd_kafka_topic_partition_list_destroy(sub);

    static char seen[N];
    int got = 0, dup = 0;
    time_t deadline = time(NULL) + 60;
    while (got < N && time(NULL) < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (!m)
            continue;
        if (!m->err) {
            int i = -1;
            if (m->len < 31) {
                char buf[32];
                memcpy(buf, m->payload, m->len);
                buf[m->len] = 0;
                sscanf(buf, "reading-%d", &i);
            }
            if (i >= 0 && i < N) {
                if (seen[i])
                    dup++;
                else
                    got++;
                seen[i] = 1;
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_resp_err_t ce = rd_kafka_commit(c, NULL, 0);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    printf("consumed: distinct=%d duplicates=%d commit=%s\n", got, dup, rd_kafka_err2str(ce));
    return got == N && dup == 0 && ce == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : 1;
}
