/* demo.c - the demo disk image and the `lungate demo-disk` subcommand.
 *
 * The layout is described in demo.h; its constants are shared with the boot
 * program through boot/bootprog.h.
 */
#include "demo.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot/bootprog.h"

#define DEMO_SECTOR LUNGATE_BOOT_SECTOR

_Static_assert(sizeof(LUNGATE_BOOT_COUNTER_MAGIC) == 16, "counter magic is 16 bytes with its NUL");
_Static_assert(sizeof(LUNGATE_BOOT_PATTERN_TAG) - 1 == 8, "pattern tag is 8 bytes");
_Static_assert(LUNGATE_BOOT_MIN_DISK / DEMO_SECTOR >
                   LUNGATE_BOOT_COUNTER_LBA + 1 + LUNGATE_BOOT_PATTERN_SECTORS,
               "the smallest disk holds program, counter and pattern region apart");

/* Store v little-endian in 8 bytes. */
static void demo_put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Write all of buf at offset, retrying short writes and EINTR. */
static int demo_pwrite_all(int fd, const void *buf, size_t len, uint64_t offset)
{
    const unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

void demo_pattern_sector(unsigned char sector[512], uint64_t lba)
{
    demo_put_le64(sector, lba);
    memcpy(sector + 8, LUNGATE_BOOT_PATTERN_TAG, 8);
    for (unsigned i = 16; i < DEMO_SECTOR; i++)
        sector[i] = (unsigned char)(lba + i);
}

int demo_pattern_write(int fd, uint64_t first_lba, uint64_t count)
{
    enum { CHUNK = 128 }; /* sectors per pwrite */
    unsigned char *buf = malloc((size_t)CHUNK * DEMO_SECTOR);
    int rc = 0;

    if (!buf)
        return -ENOMEM;
    while (count > 0 && rc == 0) {
        uint64_t n = count < CHUNK ? count : CHUNK;
        for (uint64_t i = 0; i < n; i++)
            demo_pattern_sector(buf + i * DEMO_SECTOR, first_lba + i);
        rc = demo_pwrite_all(fd, buf, (size_t)n * DEMO_SECTOR, first_lba * DEMO_SECTOR);
        first_lba += n;
        count -= n;
    }
    free(buf);
    return rc;
}

/* Write program, counter and pattern region into the (sparse, zero) file. */
static int demo_disk_fill(int fd, uint64_t size_bytes)
{
    unsigned char counter[DEMO_SECTOR] = {0};
    int rc;

    if (ftruncate(fd, (off_t)size_bytes) < 0)
        return -errno;
    rc = demo_pwrite_all(fd, lungate_bootprog, lungate_bootprog_len, 0);
    if (rc < 0)
        return rc;
    memcpy(counter, LUNGATE_BOOT_COUNTER_MAGIC, sizeof(LUNGATE_BOOT_COUNTER_MAGIC));
    /* count 0: bytes LUNGATE_BOOT_COUNTER_OFFSET.. stay zero */
    rc = demo_pwrite_all(fd, counter, sizeof(counter),
                         (uint64_t)LUNGATE_BOOT_COUNTER_LBA * DEMO_SECTOR);
    if (rc < 0)
        return rc;
    rc = demo_pattern_write(fd, size_bytes / DEMO_SECTOR - LUNGATE_BOOT_PATTERN_SECTORS,
                            LUNGATE_BOOT_PATTERN_SECTORS);
    if (rc < 0)
        return rc;
    if (fsync(fd) < 0)
        return -errno;
    return 0;
}

int demo_disk_create(const char *path, uint64_t size_bytes)
{
    int fd, rc;

    if (!path || !*path)
        return -EINVAL;
    if (size_bytes % DEMO_SECTOR != 0 || size_bytes < LUNGATE_BOOT_MIN_DISK ||
        size_bytes > (uint64_t)INT64_MAX)
        return -EINVAL;
    if (lungate_bootprog_len == 0 || lungate_bootprog_len % DEMO_SECTOR != 0 ||
        lungate_bootprog_len > LUNGATE_BOOT_PROG_MAX_SECTORS * DEMO_SECTOR)
        return -EOVERFLOW; /* a broken build, not a user error */

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    rc = demo_disk_fill(fd, size_bytes);
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0)
        unlink(path); /* we created it (O_EXCL): leave nothing half-written */
    return rc;
}

int demo_counter_read(const char *path, uint32_t *count)
{
    unsigned char sector[DEMO_SECTOR];
    const unsigned char *p = sector + LUNGATE_BOOT_COUNTER_OFFSET;
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    do
        n = pread(fd, sector, sizeof(sector), (off_t)LUNGATE_BOOT_COUNTER_LBA * DEMO_SECTOR);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    close(fd);
    if (n != (ssize_t)sizeof(sector) ||
        memcmp(sector, LUNGATE_BOOT_COUNTER_MAGIC, sizeof(LUNGATE_BOOT_COUNTER_MAGIC)) != 0)
        return -EILSEQ;
    *count = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return 0;
}

static void demo_usage(FILE *out)
{
    fprintf(out,
            "usage: lungate demo-disk PATH [SIZE_MIB]\n"
            "\n"
            "Create a raw disk image at PATH (default %d MiB, at least 1) that boots\n"
            "lungate's own boot program. Booted through iPXE (sanboot), it checks\n"
            "int 13h reads and writes against a known pattern, counts its boots and\n"
            "prints LUNGATE-BOOT OK count=N on COM1 and screen.\n"
            "PATH must not exist yet. Serve it with: lungate serve --image PATH\n",
            DEMO_DISK_DEFAULT_MIB);
}

int cmd_demo_disk(int argc, char **argv)
{
    uint64_t mib = DEMO_DISK_DEFAULT_MIB;
    const char *path;
    int rc;

    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        demo_usage(stdout);
        return 0;
    }
    if (argc < 2 || argc > 3 || argv[1][0] == '\0') {
        demo_usage(stderr);
        return 2;
    }
    path = argv[1];
    if (argc == 3) {
        const char *s = argv[2];
        char *end;

        errno = 0;
        mib = strtoull(s, &end, 10);
        if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || mib == 0 ||
            mib > (uint64_t)INT64_MAX / (1024 * 1024)) {
            fprintf(stderr,
                    "lungate demo-disk: bad size '%s' for %s: give a whole number "
                    "of MiB, at least 1 (default %d)\n",
                    s, path, DEMO_DISK_DEFAULT_MIB);
            return 2;
        }
    }

    rc = demo_disk_create(path, mib * 1024 * 1024);
    if (rc == -EEXIST) {
        fprintf(stderr,
                "lungate demo-disk: %s already exists; demo-disk never overwrites, "
                "so remove it or choose another path\n",
                path);
        return 1;
    }
    if (rc < 0) {
        fprintf(stderr, "lungate demo-disk: cannot create %s: %s%s\n", path, strerror(-rc),
                rc == -ENOSPC || rc == -EFBIG ? " (choose a smaller SIZE_MIB or another place)"
                : rc == -EACCES || rc == -EROFS ? " (choose a writable directory)"
                : "");
        return 1;
    }
    printf("lungate demo-disk: created %s (%" PRIu64 " MiB, boot counter 0); "
           "serve it with: lungate serve --image %s\n",
           path, mib, path);
    return 0;
}
