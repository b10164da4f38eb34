package chunking

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"
)

type golden struct {
	len int
	sum string
}

// goldenSeed seeds the golden input: 24 MiB of testData.
const goldenSeed = 0x676f6c64656e

// The chunks of the golden input under DefaultParams with each algorithm.
// These are the storage format: if they change, every stored file stops
// deduplicating against new uploads. Never update them without a migration.
var goldenGear = []golden{
	{1128516, "7d527054d12eca952c76ce0a2b3c86c3d1613f212800bef157d953ee27e09be4"},
	{581804, "0c66178afd8ce9d29a059ff47a8340a4d6ac41e2bf3ef982b99a273ca3d46b79"},
	{509212, "8f2e479dc0c445f4c9a07b7ffb3c46909773f256143fb5f5e0a72d00fdbe1a13"},
	{1524466, "b3518be5aa6ad38eebc86b5648b53056f49455a0047f6f7f0abd382aaf87a118"},
	{524316, "276cb33361c3d0db9c8e384218f0838b0c648d9d5b19ae5cbe2b4999913b80e6"},
	{1121367, "66e629ef796d6b0aad2a246a0e98b32462d2422a96f1d6dc0e668b54e27c939f"},
	{603712, "495fe6bca14720aef085da002fef9e655fafc0863b801742cc4c6476afafdb87"},
	{1213499, "026e719e7608d5b4633bf6430939f2358b50a7ac61e63866df62df005d5e76e7"},
	{1080152, "5571d4953015d9bd93bf8a673950547d771b66d06a0449afcf7ced935f7bd3dc"},
	{1094137, "4a1ee2efd4f0ac1ea39f68b03b1612ef1ad3051e92b861d28404dd8c576e9fbd"},
	{1854731, "ebcabdae9c7129c27e107fd2e5dac3fbdd5836ffb4ed346c0046c79b9dc1ee91"},
	{1217851, "7be97bb3b51b4a93e6e4da9f36b7766cb45d68a81fd38d85f0c6c02a61fdde1a"},
	{1242446, "828ae1921b33a4e9d93f4ab1dbe1529f4d71ab876bacafb87921000837def488"},
	{900084, "b8faac02f694ed4d809365195a59e531ebb238a627cb9bfb5fc36be278f2e8e6"},
	{1322319, "af180aee89a65e573f4f43fc0816ef913e7175138f6c61ccdaf5c102515bf6b7"},
	{1203417, "0222d91d6fc275d0f5a4578cbfd60719366694285be74ed3345c3734b4f16a60"},
	{1065328, "28fa16e208e59525a0f10ecb77253927c4606060e64ca606af8fbc6c9559f143"},
	{1052410, "7e41802cfcf566a6979fb8fc8fecebcd79853aa9088b8c49e2cbe74b7a74a82b"},
	{273476, "7a5568752c9c40607ee6c75d1cabf6dac9946d903f55e39cd64a2969eebcf64c"},
	{933872, "be8077cc78dce01a25169f6c12312ee366e20cb09b596e3ae14af8ee9b5f2407"},
	{1133178, "4fcf9f348692c6995153a11c33c3646ac24a86581f169d22bcdf8acbd4ca72ce"},
	{1129071, "944d3f22c9334f150b2d64d081a34658c8d023d99d412addf97a476849c043db"},
	{1306224, "c655a94b98687c6f886df218cb463aea27250c1607b9f2b23dad5d063d5001c3"},
	{1025719, "34ec24cb3fc1e49bf0e724350771aba74f49e0bef037313b9cc1a18072e9b326"},
	{124517, "447cd2bb4cb81a2aa9634384ac54df2d259fee232f38a8efc13607622090786d"},
}

var goldenRabin = []golden{
	{1101134, "b2c40f3a82403666e4268fe03b7210d2cf753a1e1b72610295005e052867b3e4"},
	{662689, "25669ef2ca72e919b2ddfdc9709018aa9e9f107207205e3fa2e9704f0e68a8f2"},
	{1331162, "6081cfd711d8e45b7248c6d656af70eeb99c3f0dedfd9a906dffeadd3eca4779"},
	{1227296, "18f33e50f2a5a4ac684c0db9cb95bddba27a9ea93c8ac61d4662a0fa4c732c22"},
	{1130637, "9887235901e6b60b753fa2bd9e130deed32a3122423f888e7a98f93292a887a3"},
	{1052875, "ee711c0559b7a8e360dcfc5eb3b7f343ab532dbcdb916aa47841375c7723bee6"},
	{820210, "9b440b197ecb73c874f81308481b39839ce0c9b2aee64b347f86651da1866463"},
	{425633, "443863496d10c6c9e88f2b89f72ea19344903a4c5efdfb7a6eea094395211168"},
	{1059100, "b69d745237d9f28131aa6bb09b95ed2f8bc7308843264dd98649cd493d161133"},
	{1087418, "67ab73f1e0bd5f1768deaba1a830569b4e8b712ef4efe30631fb831d1d53b169"},
	{1173546, "e6ec1e22336c5aae3637c1089d2a569b27de498ede7385d93cbf9e6d1f4ce12d"},
	{858300, "538e149c33f5279b635a6ba459a5cc1aff00dc4588d17e36493fc80e6e3d6aaa"},
	{707475, "ecb9d3f95e9c47bd2f9d309186f83480f6dbb3022e58adb3939b059fb1ff2451"},
	{1107869, "ec04aa87fa18a041889c3c68c0ad2cf4fb894d158faa6a0ac5ff7fd41b1c2272"},
	{1069132, "0d14e0b59f153012a8b60c20858d5af1d524c6e804cd09b238201e78f48d5c97"},
	{1095082, "ddfc7f517a8be29634a88b008446218b5c9ab9d6c215525b587973ec0a377b90"},
	{357674, "0037fb786a3cccfcef8b4fcf1a9da607d26d2509e82b504fcef44022ee6fa476"},
	{653685, "b2687e4386a94db2d2b30ab12c073c6813e01b1c79013541cfd23cfbf08019ca"},
	{1257604, "9464061b69e7854a72f9fbcccdb6d0f237ca7422e46629019ff421cdb6c1caf5"},
	{1338528, "5ca799db7834128057c053f773d520a575ac9199ddbbca55ef0b3e3f07bcd52d"},
	{1064525, "e5d342ac1dbb16abf09adc2e367b89975e024955d4bd12b3869568525b538a76"},
	{1148238, "11e39f56baec1eb756e3b70d7151990b5aeaffe3ffa41ed47e8ef1b160ab287a"},
	{1076663, "ca0b70b31637cecb0b8bccd890febb162bf20264d8914b038874aca02344002e"},
	{1221787, "b00ed520305eade15459a52f246872a3d258bd3169a279da8d98da3bb50735f5"},
	{1137562, "72db87d65ce23de1aecd5970fe7af2f303f0bfb5b2f615f3e8bd86435c3d11be"},
}

func TestGolden(t *testing.T) {
	data := testData(goldenSeed, 24<<20)
	for _, tc := range []struct {
		alg  Algorithm
		want []golden
	}{{Gear, goldenGear}, {Rabin, goldenRabin}} {
		t.Run(string(tc.alg), func(t *testing.T) {
			p := DefaultParams()
			p.Algorithm = tc.alg
			chunks := chunkAll(t, data, p, nil)
			checkChunks(t, data, chunks, p)
			if len(chunks) != len(tc.want) {
				t.Errorf("%d chunks, want %d", len(chunks), len(tc.want))
			}
			for i := range min(len(chunks), len(tc.want)) {
				if got := (golden{len(chunks[i]), hexSum(chunks[i])}); got != tc.want[i] {
					t.Errorf("chunk %d = %v, want %v", i, got, tc.want[i])
				}
			}
		})
	}
}

// TestGearTableGolden pins the gear table (part of the storage format).
func TestGearTableGolden(t *testing.T) {
	var b []byte
	for _, v := range gearTable {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	sum := sha256.Sum256(b)
	if got, want := hex.EncodeToString(sum[:]), "fe4e56e7078993a4f350d274da5ebdd472cd7e658fcf6724f6d8c34be513d553"; got != want {
		t.Errorf("gear table SHA-256 = %s, want %s", got, want)
	}
	if gearTable[0] != 0xac499c49eb0dcfe4 || gearTable[255] != 0x71aa01298b22331 {
		t.Errorf("gear table ends = %#x, %#x", gearTable[0], gearTable[255])
	}
}

// TestThresholdsGolden pins the thresholds derived from Params: they are
// computed in floating point, and must not drift between platforms or
// releases.
func TestThresholdsGolden(t *testing.T) {
	for _, tc := range []struct {
		p      Params
		t1, t2 uint64
	}{
		{DefaultParams(), 0x6c6811c2d79, 0x6c6811c2d797},
		{Params{Gear, 64 << 10, 256 << 10, 1 << 20}, 0x1b19f16b2fef, 0x1b19f16b2fef5},
		{Params{Gear, 64, 128, 1024}, 0x13750e7d8c05fc0, 0x13750e7d8c05fc00},
		{Params{Gear, 1000, 3000, 100000}, 0xa6478b0cfef59, 0xa6478b0cfef598},
	} {
		if got := computeThresholds(tc.p); got.t1 != tc.t1 || got.t2 != tc.t2 {
			t.Errorf("%v: thresholds %#x, %#x; want %#x, %#x", tc.p, got.t1, got.t2, tc.t1, tc.t2)
		}
	}
}
