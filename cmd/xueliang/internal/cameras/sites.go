package cameras

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"xueliang/cmd/xueliang/internal/registry"
	"xueliang/index"
)

// Village is one village of Sites with its camera counts.
type Village struct {
	Name    string `json:"name"`
	Cameras int    `json:"cameras"`
	Enabled int    `json:"enabled"`
	Online  int    `json:"online"`
}

// Township is one township of Sites: its villages and their totals.
type Township struct {
	Name     string    `json:"name"`
	Cameras  int       `json:"cameras"`
	Enabled  int       `json:"enabled"`
	Online   int       `json:"online"`
	Villages []Village `json:"villages"`
}

// Sites groups cams by township and village (both sorted by name) and
// counts them: all, enabled, and online (online reports whether a camera's
// puller is connected).
func Sites(cams []index.Camera, online func(id string) bool) []Township {
	type key struct{ t, v string }
	villages := map[key]*Village{}
	towns := map[string]*Township{}
	for _, c := range cams {
		t := towns[c.Township]
		if t == nil {
			t = &Township{Name: c.Township}
			towns[c.Township] = t
		}
		v := villages[key{c.Township, c.Village}]
		if v == nil {
			v = &Village{Name: c.Village}
			villages[key{c.Township, c.Village}] = v
		}
		v.Cameras++
		t.Cameras++
		if c.Enabled {
			v.Enabled++
			t.Enabled++
		}
		if online != nil && online(c.ID) {
			v.Online++
			t.Online++
		}
	}
	out := make([]Township, 0, len(towns))
	for name, t := range towns {
		for k, v := range villages {
			if k.t == name {
				t.Villages = append(t.Villages, *v)
			}
		}
		sort.Slice(t.Villages, func(i, j int) bool { return t.Villages[i].Name < t.Villages[j].Name })
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Device ID allocation for a village.
//
// GB/T 28181 IDs carry the county (division 411426) but no township or
// village, so the registry gives each village a block of 1,000 serials: an
// ID is 41142600 (centre) · industry · type · network · BBB NNN, where BBB
// is the village's block and NNN its camera number. A village whose
// cameras already have IDs keeps their block (the one most of them use);
// a village without any gets the lowest block no camera ID of the county
// uses yet. 999 blocks cover the county's ~740 villages.
const (
	defaultCentre   = registry.XiayiDivision + "00"
	defaultIndustry = "00"
	defaultNetwork  = "0"
	blockPrefixLen  = 17 // 14 + the 3-digit block
)

// Proposal is a proposed device ID for a new camera of a village.
type Proposal struct {
	ID       string `json:"id"`
	Township string `json:"township"`
	Village  string `json:"village"`
	// Block is the 17-digit prefix of the village's IDs; NewBlock is true
	// when the village had no camera with an ID yet.
	Block    string `json:"block"`
	NewBlock bool   `json:"new_block"`
}

// NextID proposes the next free device ID for a camera of township /
// village (see the allocation rule above). typ is the device type (131 or
// 132; empty means 132, IP camera). Every camera row ever registered
// counts as used, so a removed camera's ID (and its footage) is not handed
// to another camera.
func (s *Service) NextID(ctx context.Context, township, village, typ string) (Proposal, error) {
	bad := FieldErrors{}
	township, village = strings.TrimSpace(township), strings.TrimSpace(village)
	checkText(bad, "township", township, maxSite, true)
	checkText(bad, "village", village, maxSite, true)
	if typ == "" {
		typ = registry.TypeIPCamera
	}
	if typ != registry.TypeCamera && typ != registry.TypeIPCamera {
		bad["type"] = fmt.Sprintf("want %s or %s", registry.TypeCamera, registry.TypeIPCamera)
	}
	if len(bad) > 0 {
		return Proposal{}, &ValidationError{Fields: bad}
	}
	all, err := s.Store.Cameras(ctx)
	if err != nil {
		return Proposal{}, err
	}
	pol := s.policy()
	used := make([]string, 0, len(all))
	blockUse := map[string]int{}    // block prefix → cameras of this village in it
	usedBlocks := map[string]bool{} // block numbers used by anyone
	for _, c := range all {
		used = append(used, c.ID)
		d, err := pol.Parse(c.ID)
		if err != nil {
			continue
		}
		usedBlocks[d.Serial[:3]] = true
		if c.Township == township && c.Village == village && d.Type == typ {
			blockUse[c.ID[:blockPrefixLen]]++
		}
	}
	p := Proposal{Township: township, Village: village}
	// The village's block: the most used, lowest on a tie, not full.
	blocks := make([]string, 0, len(blockUse))
	for b := range blockUse {
		blocks = append(blocks, b)
	}
	sort.Slice(blocks, func(i, j int) bool {
		if blockUse[blocks[i]] != blockUse[blocks[j]] {
			return blockUse[blocks[i]] > blockUse[blocks[j]]
		}
		return blocks[i] < blocks[j]
	})
	// Camera numbers start at 001 in every block.
	free := func(block string) (string, error) {
		return registry.NextFreeID(block, append(used, block+"000"))
	}
	for _, b := range blocks {
		if id, err := free(b); err == nil {
			p.ID, p.Block = id, b
			return p, nil
		}
	}
	base := defaultCentre + defaultIndustry + typ + defaultNetwork
	for n := 0; n < 1000; n++ {
		blk := fmt.Sprintf("%03d", n)
		if usedBlocks[blk] {
			continue
		}
		if id, err := free(base + blk); err == nil {
			p.ID, p.Block, p.NewBlock = id, base+blk, true
			return p, nil
		}
	}
	return Proposal{}, fmt.Errorf("%w: every village block is taken", registry.ErrNoFreeID)
}
