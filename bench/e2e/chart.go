package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"strings"
)

// The chart is drawn with the standard library only: bars, lines and text
// in a built-in 5x7 bitmap font (upper case, digits, a little punctuation).

var (
	white  = color.RGBA{255, 255, 255, 255}
	black  = color.RGBA{30, 30, 30, 255}
	grey   = color.RGBA{200, 200, 200, 255}
	colors = map[string]color.RGBA{
		"runc":            {120, 120, 120, 255},
		"barewrap":        {70, 130, 200, 255},
		"capshim":         {230, 130, 40, 255},
		"capshim-explain": {200, 60, 60, 255},
	}
)

// writeChart draws both end-to-end measures of r, one panel each.
func writeChart(path string, r *results) error {
	const w, h = 1000, 460
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fill(img, 0, 0, w, h, white)
	text(img, 20, 14, 3, black, "CAPSHIM VS A BARE GO EXEC WRAPPER VS RUNC")
	text(img, 20, 44, 2, black, fmt.Sprintf("MEDIAN WALL TIME, %d/%d INTERLEAVED RUNS, LOWER IS BETTER", r.Pass.N, r.Cycle.N))
	panel(img, 20, 80, 470, 360, "PASS-THROUGH: STATE (MS)", r.Pass)
	panel(img, 510, 80, 470, 360, "CREATE+START+DELETE (MS)", r.Cycle)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func panel(img *image.RGBA, x0, y0, w, h int, title string, m measure) {
	text(img, x0+10, y0, 2, black, title)
	top, bottom := y0+50, y0+h-60
	max := 0.0
	for _, rt := range runtimes {
		if v := m.Runtimes[rt].Median; v > max {
			max = v
		}
	}
	if max <= 0 {
		return
	}
	// Axis from zero: bar heights compare honestly.
	fill(img, x0+10, bottom, w-20, 2, black)
	for i := 1; i <= 4; i++ {
		y := bottom - (bottom-top)*i/4
		fill(img, x0+10, y, w-20, 1, grey)
		text(img, x0+12, y-16, 1, black, fmt.Sprintf("%.2f", max*float64(i)/4))
	}
	bw := (w - 80) / len(runtimes)
	// Labels under the bars stay within their columns: all at half size
	// when one at full size would run into the next bar's.
	labels := make([][2]string, len(runtimes))
	scale := 2
	for i, rt := range runtimes {
		labels[i] = [2]string{rt, fmt.Sprintf("%.2fX RUNC", m.Runtimes[rt].Median/m.Runtimes["runc"].Median)}
		for _, l := range labels[i] {
			scale = min(scale, fitScale(l, bw-8))
		}
	}
	for i, rt := range runtimes {
		s := m.Runtimes[rt]
		bh := int(float64(bottom-top) * s.Median / max)
		x := x0 + 50 + i*bw
		fill(img, x+10, bottom-bh, bw-40, bh, colors[rt])
		text(img, x+10, bottom-bh-18, 2, black, fmt.Sprintf("%.2f", s.Median))
		for j, label := range labels[i] {
			text(img, x+4, bottom+8+j*11*scale, scale, black, label)
		}
	}
}

// fitScale is the largest font scale, 2 or 1, at which s is at most width
// pixels wide.
func fitScale(s string, width int) int {
	if len(s)*6*2 <= width {
		return 2
	}
	return 1
}

func fill(img *image.RGBA, x, y, w, h int, c color.RGBA) {
	for j := y; j < y+h; j++ {
		for i := x; i < x+w; i++ {
			img.SetRGBA(i, j, c)
		}
	}
}

// text draws s with its top left corner at x, y, each font pixel scale x
// scale image pixels.
func text(img *image.RGBA, x, y, scale int, c color.RGBA, s string) {
	for _, r := range strings.ToUpper(s) {
		g, ok := font[r]
		if !ok {
			g = font['?']
		}
		for row, line := range g {
			for col, p := range line {
				if p == '#' {
					fill(img, x+col*scale, y+row*scale, scale, scale, c)
				}
			}
		}
		x += 6 * scale
	}
}

var font = map[rune][7]string{
	' ': {"     ", "     ", "     ", "     ", "     ", "     ", "     "},
	'?': {" ### ", "#   #", "    #", "   # ", "  #  ", "     ", "  #  "},
	'A': {" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"},
	'B': {"#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "},
	'C': {" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "},
	'D': {"#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### "},
	'E': {"#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"},
	'F': {"#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "},
	'G': {" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"},
	'H': {"#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"},
	'I': {" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "},
	'J': {"  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "},
	'K': {"#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"},
	'L': {"#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"},
	'M': {"#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"},
	'N': {"#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #"},
	'O': {" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "},
	'P': {"#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "},
	'Q': {" ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #"},
	'R': {"#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"},
	'S': {" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "},
	'T': {"#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "},
	'U': {"#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "},
	'V': {"#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "},
	'W': {"#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # "},
	'X': {"#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"},
	'Y': {"#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "},
	'Z': {"#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"},
	'0': {" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "},
	'1': {"  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "},
	'2': {" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"},
	'3': {"#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "},
	'4': {"   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "},
	'5': {"#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "},
	'6': {"  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "},
	'7': {"#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "},
	'8': {" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "},
	'9': {" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "},
	'.': {"     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "},
	',': {"     ", "     ", "     ", "     ", " ##  ", "  #  ", " #   "},
	':': {"     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     "},
	'+': {"     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     "},
	'-': {"     ", "     ", "     ", "#####", "     ", "     ", "     "},
	'(': {"   # ", "  #  ", " #   ", " #   ", " #   ", "  #  ", "   # "},
	')': {" #   ", "  #  ", "   # ", "   # ", "   # ", "  #  ", " #   "},
	'/': {"     ", "    #", "   # ", "  #  ", " #   ", "#    ", "     "},
	'=': {"     ", "     ", "#####", "     ", "#####", "     ", "     "},
	'%': {"##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##"},
}
