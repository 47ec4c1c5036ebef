package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// A config file (--config FILE, YAML or JSON) sets flags of the command it is given to: each
// key names a flag, with underscores or dashes (lr_schedule, lr-schedule), or a train.Config
// field by its config.json name (configAliases: distill's model is --student). A flag given on
// the command line wins over the file. A run's own config.json is a valid config file: its
// "config" object holds the run's settings, and the rest (the model's sizes, labels, ...) is
// what the run found out, which is left alone. A key that names no flag, a value of the wrong
// type and a file that is neither YAML nor JSON are usage errors naming the key or the file.

// configFlag is the flag that names a config file.
const configFlag = "config"

// addConfigFlag registers --config on cmd.
func addConfigFlag(cmd *cobra.Command) {
	cmd.Flags().String(configFlag, "", "read flags from this YAML or JSON file (keys are flag names, or a run's config.json); flags on the command line win")
}

// applyConfigFile sets the flags that cmd's config file names and the command line does not.
func applyConfigFile(cmd *cobra.Command) error {
	f := cmd.Flags().Lookup(configFlag)
	if f == nil || !f.Changed {
		return nil
	}
	path := f.Value.String()
	settings, err := readConfigFile(path)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	flags := map[string]*pflag.Flag{}
	var unknown []string
	for _, k := range keys {
		if fl := configKeyFlag(cmd, k); fl != nil {
			flags[k] = fl
		} else {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		what := "unknown key"
		if len(unknown) > 1 {
			what += "s"
		}
		return usageError{fmt.Sprintf("--config %s: %s %s: no such flag of '%s' (see '%s --help')",
			path, what, strings.Join(unknown, ", "), cmd.CommandPath(), cmd.CommandPath())}
	}
	for _, k := range keys {
		fl := flags[k]
		if fl.Changed { // given on the command line
			continue
		}
		value, err := flagText(settings[k])
		if err == nil {
			err = cmd.Flags().Set(fl.Name, value)
		}
		if err != nil {
			return usageError{fmt.Sprintf("--config %s: %s: %v (--%s takes a value of type %s)", path, k, err, fl.Name, fl.Value.Type())}
		}
		if err := checkFlag(cmd, fl); err != nil {
			return usageError{fmt.Sprintf("--config %s: %s: %v", path, k, err)}
		}
	}
	return nil
}

// readConfigFile reads a config file's settings: a JSON object or a YAML mapping; a run's
// config.json gives its "config" object.
func readConfigFile(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--config %s: %v", path, err)}
	}
	var doc any
	if trimmed := bytes.TrimSpace(b); len(trimmed) > 0 && trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber() // a seed keeps all its digits
		if err := dec.Decode(&doc); err != nil {
			return nil, usageError{fmt.Sprintf("--config %s: not valid JSON: %v", path, err)}
		}
	} else if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, usageError{fmt.Sprintf("--config %s: neither YAML nor JSON: %v", path, err)}
	}
	settings, ok := doc.(map[string]any)
	if !ok {
		return nil, usageError{fmt.Sprintf("--config %s: neither a YAML mapping nor a JSON object of flag names and values", path)}
	}
	if run, ok := settings["config"].(map[string]any); ok && settings["model"] != nil { // a run's config.json
		return run, nil
	}
	return settings, nil
}

// configKeyFlag is the flag of cmd that a config file's key names (nil for none).
func configKeyFlag(cmd *cobra.Command, key string) *pflag.Flag {
	name := strings.ReplaceAll(key, "_", "-")
	if alias, ok := configAliases[cmd.Name()][key]; ok {
		name = alias
	}
	switch name {
	case configFlag, "help":
		return nil
	}
	return cmd.Flags().Lookup(name)
}

// flagText is a config value as the command line would give it: a list's items joined by commas.
func flagText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case json.Number:
		return x.String(), nil
	case []any:
		items := make([]string, len(x))
		for i, item := range x {
			s, err := flagText(item)
			if err != nil {
				return "", err
			}
			if _, isList := item.([]any); isList {
				return "", fmt.Errorf("a list inside a list")
			}
			if strings.ContainsAny(s, ",\"\n") { // a list flag reads its value as a CSV record
				s = `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
			}
			items[i] = s
		}
		return strings.Join(items, ","), nil
	case nil:
		return "", fmt.Errorf("no value")
	}
	return "", fmt.Errorf("a %T is no flag value", v)
}
