/*
 * A qemu TCG plugin that counts the guest instructions a program executes under
 * qemu-user: every translated block adds its instruction count each time it runs. The
 * total is printed to stderr at exit as "guest instructions: N". Built and used by
 * scripts/bench-aarch64 to count the box's work per audio second on aarch64 without an
 * ARM board (instruction counts, not seconds: the same for the same binary and input).
 *
 * Only the handful of plugin entry points used here are declared, by hand, after the
 * plugin API of qemu 7.2 (API version 1), which Debian 12's qemu-user ships.
 */
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_cb_flags { CB_NO_REGS, CB_R_REGS, CB_RW_REGS };

extern void qemu_plugin_register_vcpu_tb_trans_cb(
    qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, struct qemu_plugin_tb *));
extern void qemu_plugin_register_vcpu_tb_exec_cb(
    struct qemu_plugin_tb *tb, void (*cb)(unsigned int, void *), enum qemu_plugin_cb_flags flags,
    void *userdata);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern void qemu_plugin_register_atexit_cb(
    qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, void *), void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t executed;

static void on_exec(unsigned int vcpu, void *n)
{
    (void)vcpu;
    __atomic_fetch_add(&executed, (uint64_t)(uintptr_t)n, __ATOMIC_RELAXED);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, CB_NO_REGS, (void *)(uintptr_t)n);
}

static void on_exit(qemu_plugin_id_t id, void *p)
{
    (void)id;
    (void)p;
    fprintf(stderr, "guest instructions: %llu\n",
            (unsigned long long)__atomic_load_n(&executed, __ATOMIC_RELAXED));
}

__attribute__((visibility("default"))) int qemu_plugin_install(
    qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    (void)argc;
    (void)argv;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit, NULL);
    return 0;
}
