/*
 * shim_locate.c - where libcluster_shim.so is: beside cluster-run in the
 * build tree (build/supervisor/../shim/), or where `meson install` put it,
 * found relative to the installed binary so a DESTDIR or moved prefix works.
 * CLUSTER_SHIM_PATH overrides both.
 *
 * Why the file is checked at start: whatever CLUSTER_SHIM_PATH names goes
 * into every worker's LD_PRELOAD.  Something that is not the shim (a typo'd
 * path to another library, a text file) is either ignored by the dynamic
 * loader with a warning in the worker's output, or loads and does nothing;
 * either way no worker checks in, and 5 s later cluster-run blames the
 * server ("may clear LD_PRELOAD", "a Go binary?").  So the file must be an
 * ELF shared object for this machine whose DT_SONAME is the shim's
 * (libcluster_shim.so; the sanitized test builds' libcluster_shim_*.so).
 */
#include "shim_locate.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHIM_SONAME "libcluster_shim"

static bool readable(const char *path)
{
	return access(path, R_OK) == 0;
}

static bool try_candidate(const char *dir, const char *rel, char *out,
			  size_t cap)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", dir, rel) >= (int)sizeof(path))
		return false;
	if (!readable(path) || !realpath(path, out))
		return false;
	return strlen(out) < cap;
}

/* ---- is it the shim? ---- */

struct elf_image {
	const unsigned char *p;
	size_t size;
};

static bool in_image(const struct elf_image *im, Elf64_Off off, size_t len)
{
	return off <= im->size && len <= im->size - off;
}

/* A virtual address of a PT_LOAD segment as a file offset; 0 if none. */
static Elf64_Off vaddr_to_offset(const struct elf_image *im,
				 const Elf64_Ehdr *eh, Elf64_Addr vaddr)
{
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const void *)(im->p + eh->e_phoff +
						      (size_t)i * sizeof(*ph));

		if (ph->p_type == PT_LOAD && vaddr >= ph->p_vaddr &&
		    vaddr - ph->p_vaddr < ph->p_filesz)
			return ph->p_offset + (vaddr - ph->p_vaddr);
	}
	return 0;
}

/* The DT_SONAME of a shared object, or NULL. */
static const char *elf_soname(const struct elf_image *im, const Elf64_Ehdr *eh)
{
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const void *)(im->p + eh->e_phoff +
						      (size_t)i * sizeof(*ph));
		const Elf64_Dyn *dyn;
		Elf64_Addr strtab = 0;
		Elf64_Xword soname = (Elf64_Xword)-1, n;
		Elf64_Off str;

		if (ph->p_type != PT_DYNAMIC ||
		    !in_image(im, ph->p_offset, ph->p_filesz))
			continue;
		dyn = (const void *)(im->p + ph->p_offset);
		for (n = 0; n < ph->p_filesz / sizeof(*dyn) &&
			    dyn[n].d_tag != DT_NULL; n++) {
			if (dyn[n].d_tag == DT_STRTAB)
				strtab = dyn[n].d_un.d_ptr;
			else if (dyn[n].d_tag == DT_SONAME)
				soname = dyn[n].d_un.d_val;
		}
		if (!strtab || soname == (Elf64_Xword)-1)
			return NULL;
		str = vaddr_to_offset(im, eh, strtab);
		if (!str || !in_image(im, str + soname, 1) ||
		    !memchr(im->p + str + soname, '\0', im->size - str - soname))
			return NULL;
		return (const char *)im->p + str + soname;
	}
	return NULL;
}

/* NULL when the image is the shim, else what it is instead. */
static const char *elf_not_shim(const struct elf_image *im, char *what,
				size_t len)
{
	const Elf64_Ehdr *eh = (const void *)im->p;
	const char *soname;

	if (im->size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return "not an ELF file";
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine !=
#if defined(__x86_64__)
	    EM_X86_64
#elif defined(__aarch64__)
	    EM_AARCH64
#else
	    eh->e_machine
#endif
	    )
		return "an ELF file for another machine";
	if (eh->e_type != ET_DYN || eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    !in_image(im, eh->e_phoff, (size_t)eh->e_phnum * sizeof(Elf64_Phdr)))
		return "not a shared library";
	soname = elf_soname(im, eh);
	if (soname && strncmp(soname, SHIM_SONAME, strlen(SHIM_SONAME)) == 0)
		return NULL;
	if (!soname)
		return "an ELF file without a soname (a program, or not the shim)";
	snprintf(what, len, "another library (its soname is %.100s)", soname);
	return what;
}

/* 0 when path is the shim; else -1 with why in err (named as given). */
static int check_shim(const char *path, const char *given, char *err,
		      size_t errlen)
{
	struct elf_image im;
	struct stat st;
	const char *why;
	char what[160];
	void *map;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "CLUSTER_SHIM_PATH=%s is not cluster-run's "
			 "shim: %s; point it at libcluster_shim.so, or unset it",
			 given, fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	map = st.st_size > 0 ? mmap(NULL, (size_t)st.st_size, PROT_READ,
				    MAP_PRIVATE, fd, 0) : MAP_FAILED;
	close(fd);
	im.p = map == MAP_FAILED ? NULL : map;
	im.size = im.p ? (size_t)st.st_size : 0;
	why = im.p ? elf_not_shim(&im, what, sizeof(what)) : "an empty file";
	if (im.p)
		munmap(map, im.size);
	if (!why)
		return 0;
	snprintf(err, errlen, "CLUSTER_SHIM_PATH=%s is not cluster-run's shim "
		 "(libcluster_shim.so): %s; point it at the shim, or unset it",
		 given, why);
	return -1;
}

int shim_locate(char *out, size_t cap, char *err, size_t errlen)
{
	const char *env = getenv("CLUSTER_SHIM_PATH");
	char exe[PATH_MAX], *dir;
	ssize_t n;

	if (env && *env) {
		if (!realpath(env, out)) {
			snprintf(err, errlen, "CLUSTER_SHIM_PATH=%s: %s; point "
				 "it at libcluster_shim.so, or unset it", env,
				 strerror(errno));
			return -1;
		}
		return check_shim(out, env, err, errlen);
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		dir = dirname(exe);
		if (try_candidate(dir, "../shim/libcluster_shim.so", out, cap) ||
		    try_candidate(dir, SHIM_RELATIVE_TO_BINDIR, out, cap) ||
		    try_candidate(dir, "libcluster_shim.so", out, cap))
			return 0;
	}
	if (readable(SHIM_INSTALL_PATH) && realpath(SHIM_INSTALL_PATH, out))
		return 0;
	snprintf(err, errlen, "cannot find libcluster_shim.so beside "
		 "cluster-run or in %s; set CLUSTER_SHIM_PATH", SHIM_INSTALL_PATH);
	return -1;
}
