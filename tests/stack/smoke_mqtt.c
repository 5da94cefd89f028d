/* smoke_mqtt.c - proves real MQTT traffic through the local stack's
 * mosquitto with libmosquitto: subscribe, publish QoS 1 over MQTT 3.1.1 and
 * MQTT 5, receive exactly the payload sent. */
#include <mosquitto.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stack_env.h"

struct ctx {
    char topic[128];
    char payload[64];
    int subscribed;
    int received;
    int published;
};

static void on_subscribe(struct mosquitto *m, void *u, int mid, int n, const int *qos)
{
    ((struct ctx *)u)->subscribed = 1;
}
static void on_publish(struct mosquitto *m, void *u, int mid) { ((struct ctx *)u)->published = 1; }
static void on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg)
{
    struct ctx *c = u;
    if (strcmp(msg->topic, c->topic) == 0 && msg->payloadlen == (int)strlen(c->payload) &&
        memcmp(msg->payload, c->payload, (size_t)msg->payloadlen) == 0 && msg->qos == 1)
        c->received = 1;
}

static int loop_until(struct mosquitto *m, int *flag)
{
    for (int i = 0; i < 200 && !*flag; i++)
        if (mosquitto_loop(m, 50, 1) != MOSQ_ERR_SUCCESS)
            return -1;
    return *flag ? 0 : -1;
}

static int run(int protocol)
{
    struct ctx c = {0};
    snprintf(c.topic, sizeof c.topic, "tern/smoke/%d/%d", (int)getpid(), protocol);
    snprintf(c.payload, sizeof c.payload, "hello-%ld", (long)time(NULL));
    struct mosquitto *m = mosquitto_new(NULL, true, &c);
    if (!m)
        return -1;
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, protocol);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_message_callback_set(m, on_message);
    int rc = -1;
    if (mosquitto_connect(m, "127.0.0.1", STACK_MQTT_PORT(), 10) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "connect to 127.0.0.1:%d failed\n", STACK_MQTT_PORT());
        goto done;
    }
    if (mosquitto_subscribe(m, NULL, c.topic, 1) || loop_until(m, &c.subscribed)) {
        fprintf(stderr, "subscribe failed\n");
        goto done;
    }
    if (mosquitto_publish(m, NULL, c.topic, (int)strlen(c.payload), c.payload, 1, false) ||
        loop_until(m, &c.published)) {
        fprintf(stderr, "publish (PUBACK) failed\n");
        goto done;
    }
    if (loop_until(m, &c.received)) {
        fprintf(stderr, "message not received\n");
        goto done;
    }
    rc = 0;
done:
    mosquitto_disconnect(m);
    mosquitto_destroy(m);
    return rc;
}

int main(void)
{
    mosquitto_lib_init();
    int rc311 = run(MQTT_PROTOCOL_V311);
    int rc5 = run(MQTT_PROTOCOL_V5);
    mosquitto_lib_cleanup();
    printf("mqtt 3.1.1: %s\nmqtt 5: %s\n", rc311 ? "FAIL" : "ok", rc5 ? "FAIL" : "ok");
    return rc311 || rc5;
}
