package gitops

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// ImageTag returns the newTag that the kustomization in dir gives image.
func ImageTag(dir, image string) (string, error) {
	file, lines, i, err := imageEntry(dir, image)
	if err != nil {
		return "", err
	}
	m := newTagLine.FindStringSubmatch(lines[i])
	if m == nil {
		return "", fmt.Errorf("%s: images entry %s has no newTag", file, image)
	}
	return strings.Trim(m[2], `"'`), nil
}

// SetImageTag rewrites the newTag that the kustomization in dir gives image,
// changing that one line only (what a deploy or promotion PR changes), so
// the file's comments and layout stay as they are.
func SetImageTag(dir, image, tag string) error {
	if !regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`).MatchString(tag) {
		return fmt.Errorf("tag %q is not a valid image tag", tag)
	}
	file, lines, i, err := imageEntry(dir, image)
	if err != nil {
		return err
	}
	m := newTagLine.FindStringSubmatch(lines[i])
	lines[i] = m[1] + tag + m[3]
	return os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644)
}

var (
	nameLine   = regexp.MustCompile(`^(\s*)- name:\s*(\S+)\s*$`)
	newTagLine = regexp.MustCompile(`^(\s*newTag:\s*)(\S+)(\s*(#.*)?)$`)
)

// imageEntry finds, in dir's kustomization, the newTag line of the images
// entry named image (the entry's lines follow its "- name:" line, indented
// deeper). Kustomize's own writer would reformat the whole file.
func imageEntry(dir, image string) (file string, lines []string, tagLine int, err error) {
	for _, n := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			file = filepath.Join(dir, n)
			break
		}
	}
	if file == "" {
		return "", nil, 0, fmt.Errorf("%s: no kustomization", dir)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return file, nil, 0, err
	}
	lines = strings.Split(string(data), "\n")
	inImages := false
	for i, l := range lines {
		if strings.HasPrefix(l, "images:") {
			inImages = true
			continue
		}
		if inImages && l != "" && !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "#") {
			inImages = false
		}
		m := nameLine.FindStringSubmatch(l)
		if !inImages || m == nil || strings.Trim(m[2], `"'`) != image {
			continue
		}
		for j := i + 1; j < len(lines); j++ {
			if nameLine.MatchString(lines[j]) || (lines[j] != "" && len(lines[j])-len(strings.TrimLeft(lines[j], " ")) <= len(m[1])) {
				break
			}
			if newTagLine.MatchString(lines[j]) {
				return file, lines, j, nil
			}
		}
		return file, lines, 0, fmt.Errorf("%s: images entry %s has no newTag", file, image)
	}
	return file, lines, 0, fmt.Errorf("%s: images has no entry named %s", file, image)
}
