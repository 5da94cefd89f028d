/* stack_env.h - endpoints of the local test stack, from TERN_PORT_BASE (the
 * same offsets compose/local/stack uses). */
#ifndef TERN_TEST_STACK_ENV_H
#define TERN_TEST_STACK_ENV_H

#include <stdio.h>
#include <stdlib.h>

static inline int stack_port(int offset)
{
    const char *b = getenv("TERN_PORT_BASE");
    if (!b) {
        fprintf(stderr, "TERN_PORT_BASE is not set: run through ctest\n");
        exit(2);
    }
    return atoi(b) + offset;
}
#define STACK_MQTT_PORT() stack_port(1)
#define STACK_KAFKA_PORT() stack_port(2)
#define STACK_CH_HTTP_PORT() stack_port(4)

#endif
