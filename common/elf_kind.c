/* elf_kind.c - see elf_kind.h. */
#include "elf_kind.h"

#include <elf.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define SECTIONS_MAX 128
#define SECTION_NAMES_MAX 4096

/* What is read here of an ELF header, of either class (a 32-bit file's
 * header, program and section headers have other layouts). */
struct elf_info {
	bool is32;
	uint64_t phoff, shoff;
	unsigned phnum, phentsize, shnum, shentsize, shstrndx;
};

static bool elf_read_header(int fd, struct elf_info *ei)
{
	union {
		Elf32_Ehdr h32;
		Elf64_Ehdr h64;
	} eh;
	ssize_t got = pread(fd, &eh, sizeof(eh), 0);

	if (got < (ssize_t)sizeof(eh.h32) ||
	    memcmp(eh.h32.e_ident, ELFMAG, SELFMAG) != 0)
		return false;
	if (eh.h32.e_ident[EI_CLASS] == ELFCLASS32) {
		*ei = (struct elf_info){
			.is32 = true, .phoff = eh.h32.e_phoff,
			.shoff = eh.h32.e_shoff, .phnum = eh.h32.e_phnum,
			.phentsize = eh.h32.e_phentsize,
			.shnum = eh.h32.e_shnum,
			.shentsize = eh.h32.e_shentsize,
			.shstrndx = eh.h32.e_shstrndx,
		};
		return ei->phentsize == sizeof(Elf32_Phdr);
	}
	if (eh.h64.e_ident[EI_CLASS] != ELFCLASS64 ||
	    got != (ssize_t)sizeof(eh.h64))
		return false;
	*ei = (struct elf_info){
		.phoff = eh.h64.e_phoff, .shoff = eh.h64.e_shoff,
		.phnum = eh.h64.e_phnum, .phentsize = eh.h64.e_phentsize,
		.shnum = eh.h64.e_shnum, .shentsize = eh.h64.e_shentsize,
		.shstrndx = eh.h64.e_shstrndx,
	};
	return ei->phentsize == sizeof(Elf64_Phdr);
}

/* Section i of the table read into raw: its name's index, offset, size. */
static void elf_section(const struct elf_info *ei, const unsigned char *raw,
			unsigned i, uint64_t *name, uint64_t *offset,
			uint64_t *size)
{
	if (ei->is32) {
		Elf32_Shdr sh;

		memcpy(&sh, raw + (size_t)i * sizeof(sh), sizeof(sh));
		*name = sh.sh_name, *offset = sh.sh_offset, *size = sh.sh_size;
	} else {
		Elf64_Shdr sh;

		memcpy(&sh, raw + (size_t)i * sizeof(sh), sizeof(sh));
		*name = sh.sh_name, *offset = sh.sh_offset, *size = sh.sh_size;
	}
}

/* Whether the section names hold Go's build id or build info (every Go
 * binary has them, stripped or not).  12 KiB of stack. */
static bool elf_is_go(int fd, const struct elf_info *ei)
{
	unsigned char raw[SECTIONS_MAX * sizeof(Elf64_Shdr)];
	char names[SECTION_NAMES_MAX + 1];
	unsigned n = ei->shnum < SECTIONS_MAX ? ei->shnum : SECTIONS_MAX;
	size_t entsize = ei->is32 ? sizeof(Elf32_Shdr) : sizeof(Elf64_Shdr);
	uint64_t name, offset, size;
	size_t len, i;
	ssize_t got;

	if (ei->shoff == 0 || ei->shentsize != entsize ||
	    ei->shstrndx >= n ||
	    pread(fd, raw, n * entsize, (off_t)ei->shoff) !=
		    (ssize_t)(n * entsize))
		return false;
	elf_section(ei, raw, ei->shstrndx, &name, &offset, &size);
	len = size < SECTION_NAMES_MAX ? size : SECTION_NAMES_MAX;
	got = pread(fd, names, len, (off_t)offset);
	if (got <= 0)
		return false;
	names[got] = '\0';
	for (i = 0; i < n; i++) {
		elf_section(ei, raw, (unsigned)i, &name, &offset, &size);
		if (name < (uint64_t)got &&
		    (strcmp(names + name, ".note.go.buildid") == 0 ||
		     strcmp(names + name, ".go.buildinfo") == 0))
			return true;
	}
	return false;
}

enum elf_kind elf_kind_of(int fd, bool *is32)
{
	struct elf_info ei;
	uint32_t type; /* p_type: the first word of either class's Phdr */
	unsigned i;

	*is32 = false;
	if (!elf_read_header(fd, &ei))
		return ELF_KIND_DYNAMIC; /* not what we can read: assume dynamic */
	*is32 = ei.is32;
	if (elf_is_go(fd, &ei))
		return ELF_KIND_GO;
	for (i = 0; i < ei.phnum; i++) {
		if (pread(fd, &type, sizeof(type),
			  (off_t)(ei.phoff + (uint64_t)i * ei.phentsize)) !=
		    (ssize_t)sizeof(type))
			return ELF_KIND_DYNAMIC;
		if (type == PT_INTERP)
			return ELF_KIND_DYNAMIC;
	}
	return ELF_KIND_STATIC;
}

bool elf_runs_secure(const struct stat *st, uid_t uid, gid_t gid)
{
	return ((st->st_mode & S_ISUID) && st->st_uid != uid) ||
	       ((st->st_mode & S_ISGID) && st->st_gid != gid);
}
