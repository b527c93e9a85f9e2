package install

// editPodman registers the runtime "capshim" in containers.conf
// ([engine.runtimes] capshim = ["BIN"]), and with SetDefault makes it
// [engine] runtime. The text is edited so that comments and everything
// else stay as they were.
func editPodman(old []byte, opts Options) ([]byte, []string, error) {
	var settings []tomlSetting
	if opts.SetDefault {
		settings = append(settings, tomlSetting{[]string{"engine"}, "runtime", "capshim"})
	}
	settings = append(settings, tomlSetting{[]string{"engine", "runtimes"}, "capshim", []string{opts.Binary}})
	return applyTOML(old, settings)
}
