/* How deep a call goes into its stack: run it on a thread whose 64 KiB
 * stack is filled with a pattern, and find the lowest byte it changed.
 * Includes the thread's own start-up; compare with an empty call. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define STACK_DEPTH_SIZE (64 * 1024)

static size_t stack_depth(void *(*fn)(void *), void *arg)
{
	unsigned char *stack = aligned_alloc(4096, STACK_DEPTH_SIZE);
	pthread_attr_t attr;
	pthread_t t;
	size_t i = 0;

	if (!stack)
		return 0;
	memset(stack, 0xa5, STACK_DEPTH_SIZE);
	pthread_attr_init(&attr);
	pthread_attr_setstack(&attr, stack, STACK_DEPTH_SIZE);
	if (pthread_create(&t, &attr, fn, arg) == 0) {
		pthread_join(t, NULL);
		while (i < STACK_DEPTH_SIZE && stack[i] == 0xa5)
			i++;
	}
	free(stack);
	return STACK_DEPTH_SIZE - i;
}
