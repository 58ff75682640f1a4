#pragma once
// Internal to io's ITK translation units (image_read_itk.cpp, image_write_itk.cpp): the IO
// factories and ITK's error text. Nothing else includes ITK.
#include <itkBMPImageIOFactory.h>
#include <itkImageIOBase.h>
#include <itkImageIOFactory.h>
#include <itkJPEGImageIOFactory.h>
#include <itkMetaImageIOFactory.h>
#include <itkNiftiImageIOFactory.h>
#include <itkNrrdImageIOFactory.h>
#include <itkPNGImageIOFactory.h>
#include <itkTIFFImageIOFactory.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <string>

namespace mlseg::detail {

using ComponentType = itk::IOComponentEnum;

inline constexpr const char* kReexportFix =
    "check that the file opens in a viewer (ITK-SNAP, 3D Slicer); re-export or re-download it";

inline void register_itk_factories() {
  static std::once_flag once;
  std::call_once(once, [] {
    itk::Object::GlobalWarningDisplayOff();
    itk::NiftiImageIOFactory::RegisterOneFactory();
    itk::NrrdImageIOFactory::RegisterOneFactory();
    itk::MetaImageIOFactory::RegisterOneFactory();
    itk::PNGImageIOFactory::RegisterOneFactory();
    itk::TIFFImageIOFactory::RegisterOneFactory();
    itk::JPEGImageIOFactory::RegisterOneFactory();
    itk::BMPImageIOFactory::RegisterOneFactory();
  });
}

inline std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// The first line of an ITK exception's description, without ITK's file/line prefix.
inline std::string itk_reason(const itk::ExceptionObject& error) {
  std::string text = error.GetDescription();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace mlseg::detail
