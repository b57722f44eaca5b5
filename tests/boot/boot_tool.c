/* boot_tool.c - test helper for the boot tests (not installed).
 *
 *   lungate-boot-tool bootprog FILE        write the raw boot program to FILE
 *   lungate-boot-tool append-pattern FILE  pad FILE to 2048 bytes, then append
 *                                          the 64 KiB pattern region (for ISOs)
 *   lungate-boot-tool disk PATH MIB        demo_disk_create(PATH, MIB MiB)
 *   lungate-boot-tool counter PATH         print the demo disk's boot counter
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot/bootprog.h"
#include "demo.h"

/* Write the whole buffer to a new or truncated file. */
static int tool_write_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const unsigned char *p = buf;

    if (fd < 0)
        return -errno;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            close(fd);
            return -err;
        }
        p += n;
        len -= (size_t)n;
    }
    return close(fd) < 0 ? -errno : 0;
}

/* Pad path to a 2048-byte multiple and append the pattern region. */
static int tool_append_pattern(const char *path)
{
    struct stat st;
    uint64_t size;
    int fd, rc;

    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    size = ((uint64_t)st.st_size + 2047) / 2048 * 2048;
    if (ftruncate(fd, (off_t)size) < 0) {
        rc = -errno;
        goto out;
    }
    rc = demo_pattern_write(fd, size / 512, LUNGATE_BOOT_PATTERN_SECTORS);
    if (rc == 0)
        printf("%s: pattern region at LBA %" PRIu64 "..%" PRIu64 ", size now %" PRIu64 "\n",
               path, size / 512, size / 512 + LUNGATE_BOOT_PATTERN_SECTORS - 1,
               size + LUNGATE_BOOT_PATTERN_SECTORS * 512);
out:
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    int rc;

    if (strcmp(cmd, "bootprog") == 0 && argc == 3) {
        rc = tool_write_file(argv[2], lungate_bootprog, lungate_bootprog_len);
    } else if (strcmp(cmd, "append-pattern") == 0 && argc == 3) {
        rc = tool_append_pattern(argv[2]);
    } else if (strcmp(cmd, "disk") == 0 && argc == 4) {
        rc = demo_disk_create(argv[2], strtoull(argv[3], NULL, 10) * 1024 * 1024);
    } else if (strcmp(cmd, "counter") == 0 && argc == 3) {
        uint32_t count;
        rc = demo_counter_read(argv[2], &count);
        if (rc == 0)
            printf("%" PRIu32 "\n", count);
    } else {
        fprintf(stderr, "usage: %s bootprog FILE | append-pattern FILE | disk PATH MIB | "
                        "counter PATH\n",
                argv[0]);
        return 2;
    }
    if (rc < 0) {
        fprintf(stderr, "%s %s %s: %s\n", argv[0], cmd, argv[2], strerror(-rc));
        return 1;
    }
    return 0;
}
